"""``pareto_<task>.png``: test accuracy against train throughput, one point per variant."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from experiments.results_aggregate import REFERENCES, pareto_points
from experiments.results_load import tasks5
from experiments.run_record import RunRecord


def _leading_digit(value: float) -> int:
    """First significant digit of a positive number (0 for non-positive)."""
    if value <= 0:
        return 0
    return int(round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6))


def _si(value: float) -> str:
    """Tick label with k/M suffixes: 20000 -> '20k'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:g}{suffix}"
    return f"{value:g}"


def _draw_points(ax: Any, points: list[tuple[str, float, float, float, int]], cmap: Any) -> None:
    """One labelled point with its std error bar per variant."""
    for i, (variant, tps, acc, std, n) in enumerate(points):
        ax.errorbar(
            tps,
            acc,
            yerr=std,
            fmt="o",
            ms=8,
            capsize=4,
            color=cmap(i % cmap.N),
            label=f"{variant} (n={n})",
        )
        ax.annotate(
            variant,
            (tps, acc),
            xytext=(7, 4),
            textcoords="offset points",
            fontsize=8,
            color=cmap(i % cmap.N),
        )


def _draw_reference(ax: Any, task: str) -> None:
    """The LRA paper's Transformer accuracy of ``task`` as a dashed line (five tasks only)."""
    ref = {name: accs for name, accs, _, _ in REFERENCES}
    if task in tasks5():
        idx = tasks5().index(task)
        ax.axhline(
            ref["Transformer"][idx],
            ls="--",
            color="grey",
            lw=1,
            label=f"Transformer, LRA paper (ref): {ref['Transformer'][idx]:.1f}",
        )


def _throughput_axis(ax: Any, xs: list[float]) -> None:
    """Logarithmic x axis when the throughputs span more than 10x, else linear and padded."""
    from matplotlib.ticker import FuncFormatter

    if max(xs) / max(min(xs), 1e-12) > 10:
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.3, max(xs) * 1.6)  # room for the point labels
        ax.xaxis.set_minor_formatter(
            FuncFormatter(lambda v, _: _si(v) if _leading_digit(v) in (2, 5) else "")
        )
    else:
        span = max(xs) - min(xs)
        pad = 0.15 * span if span > 0 else 0.15 * max(xs)
        ax.set_xlim(max(0.0, min(xs) - pad), max(xs) + 2 * pad)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
    ax.set_xlabel("train throughput (tokens/s)")


def pareto_plot(task: str, runs: list[RunRecord], path: Path) -> bool:
    """Accuracy (%) against train throughput (tokens/s), one point per variant.

    Error bars are the sample std over seeds. The x axis is logarithmic when the throughputs
    span more than a factor 10. Returns False (and writes nothing) when no run has both numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = pareto_points(task, runs)
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    cmap = plt.get_cmap("tab10" if len(points) <= 10 else "tab20")
    _draw_points(ax, points, cmap)
    _draw_reference(ax, task)
    _throughput_axis(ax, [p[1] for p in points])
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"LRA {task}: accuracy vs training throughput (mean ± std over seeds)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
