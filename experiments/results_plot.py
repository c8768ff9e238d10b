"""``pareto_<task>.png``: test accuracy against train throughput and against peak memory."""

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


def _log_or_linear_axis(ax: Any, xs: list[float], label: str) -> None:
    """Logarithmic x axis when the values span more than 10x, else linear and padded."""
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
    ax.set_xlabel(label)


def pareto_plot(task: str, runs: list[RunRecord], path: Path) -> bool:
    """Accuracy (%) against train throughput (tokens/s) and against peak memory (GiB).

    One point per variant in each panel; error bars are the sample std over seeds. An x axis
    is logarithmic when its values span more than a factor 10. The memory panel holds the
    variants whose records carry ``peak_memory_bytes``. Returns False (and writes nothing)
    when no run has both a throughput and an accuracy.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speed = pareto_points(task, runs)
    if not speed:
        return False
    memory = [
        (variant, peak / 2**30, acc, std, n)
        for variant, peak, acc, std, n in pareto_points(task, runs, key="peak_memory_bytes")
    ]
    panels = [(speed, "train throughput (tokens/s)", "training throughput")]
    if memory:
        panels.append((memory, "peak memory (GiB)", "peak memory"))
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 5.0), dpi=120)
    axes = [axes] if len(panels) == 1 else list(axes)
    cmap = plt.get_cmap("tab10" if len(speed) <= 10 else "tab20")
    for ax, (points, label, what) in zip(axes, panels):
        _draw_points(ax, points, cmap)
        _draw_reference(ax, task)
        _log_or_linear_axis(ax, [p[1] for p in points], label)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"LRA {task}: accuracy vs {what} (mean ± std over seeds)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
