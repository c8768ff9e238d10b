"""Analysis and presentation of the scaling benchmark (:mod:`experiments.bench`).

Scaling exponent: ``log t = alpha * log N + c`` fitted by least squares,

    alpha = sum_i (u_i - u_bar)(v_i - v_bar) / sum_i (u_i - u_bar)^2,  u_i = log N_i,
    v_i = log t_i,

on the upper half of the lengths a mixer completed (and, for reference, on all of them).
Crossover: the smallest measured N from which the mixer is faster than the softmax (SDPA)
layer at every larger measured N (softmax running out of memory or time counts as slower).
Verdict: the registry's claimed class against alpha (upper half): ``O(n)`` / ``O(n log n)``
are consistent at ``alpha <= 1.15``, ``O(n^2)`` at ``alpha >= 1.8``; ``alpha < 0.8`` is
overhead-bound.

Presentation: the markdown tables of ``scaling.md``, the rich console tables and the log-log
matplotlib plot ``scaling.png``. This module never measures anything; it reads the
:class:`Row` list a run produced.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BASELINE = "softmax"
ANCHOR = "sdpa-anchor"
"""Label of the plain-PyTorch attention layer (q, k, v and output projections around one SDPA
call) that the softmax layer is measured against."""
STOP_STATUSES = ("oom", "over_budget")  # a mixer stops growing after these (the run loop)


@dataclass
class Row:
    """One measurement (a row of ``scaling.csv``)."""

    mixer: str
    scope: str
    dtype: str
    device: str
    N: int
    batch: int
    time_ms: float | None = None
    peak_mem_bytes: int | None = None
    status: str = "ok"
    repeats: int = 0
    message: str = ""
    kernels: str = ""
    """With ``--kernels``: the step's kernel table (in ``kernels.md``, not in ``scaling.csv``)."""


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------


def fit_power_law(ns: Iterable[float], ts: Iterable[float]) -> tuple[float, float]:
    """Least-squares fit of ``log t = alpha * log N + c``; returns ``(alpha, c)``.

    Raises:
        ValueError: with fewer than two distinct lengths or a non-positive value.
    """
    n_arr, t_arr = np.asarray(list(ns), float), np.asarray(list(ts), float)
    if len(set(n_arr.tolist())) < 2:
        raise ValueError(f"need at least two distinct lengths to fit N^alpha, got {n_arr}")
    if (n_arr <= 0).any() or (t_arr <= 0).any():
        raise ValueError("lengths and times must be positive to fit N^alpha on log-log axes")
    alpha, c = np.polyfit(np.log(n_arr), np.log(t_arr), 1)
    return float(alpha), float(c)


def upper_half(ns: list[int]) -> list[int]:
    """The upper half of the sorted lengths (the middle one included for an odd count)."""
    ns = sorted(ns)
    return ns[len(ns) // 2 :]


def alpha_upper_half(times: dict[int, float]) -> float | None:
    """Exponent fitted on the upper half of the measured lengths; None below two points."""
    top = upper_half(list(times))
    if len(top) < 2:
        return None
    return fit_power_law(top, [times[n] for n in top])[0]


def alpha_all(times: dict[int, float]) -> float | None:
    """Exponent fitted on every measured length; None below two points."""
    if len(times) < 2:
        return None
    ns = sorted(times)
    return fit_power_law(ns, [times[n] for n in ns])[0]


def crossover_length(times: dict[int, float], baseline: dict[int, float]) -> int | None:
    """Smallest N from which ``times`` beats ``baseline`` at every larger common N.

    ``baseline`` may hold ``inf`` where the baseline ran out of memory or time. Returns None
    when the mixer is not faster at the largest common length (or no length is common).
    """
    common = sorted(set(times) & set(baseline))
    result = None
    for n in reversed(common):
        if times[n] < baseline[n]:
            result = n
        else:
            break
    return result


def _series(
    rows: list[Row], scope: str, dtype: str, key: str = "time_ms"
) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.scope == scope and r.dtype == dtype and r.status == "ok":
            value = getattr(r, key)
            if value is not None:
                out.setdefault(r.mixer, {})[r.N] = float(value)
    return out


def summarize(rows: list[Row], scope: str, dtype: str) -> list[dict[str, Any]]:
    """Per mixer: times by N, alpha (upper half / all), ratio to softmax, crossover."""
    times = _series(rows, scope, dtype)
    base = dict(times.get(BASELINE, {}))
    for r in rows:  # the baseline's oom / over-budget lengths count as infinitely slow
        if (
            r.mixer == BASELINE
            and r.scope == scope
            and r.dtype == dtype
            and r.status in (*STOP_STATUSES, "skipped")
        ):
            base[r.N] = math.inf
    mixers = list(dict.fromkeys(r.mixer for r in rows if r.scope == scope and r.dtype == dtype))
    out = []
    for mixer in mixers:
        t = times.get(mixer, {})
        common = [n for n in sorted(set(t) & set(base)) if math.isfinite(base[n])]
        n_ratio = common[-1] if common else None
        statuses = sorted(
            {
                r.status
                for r in rows
                if r.mixer == mixer and r.scope == scope and r.dtype == dtype and r.status != "ok"
            }
        )
        out.append(
            {
                "mixer": mixer,
                "times": t,
                "alpha_upper": alpha_upper_half(t),
                "alpha_all": alpha_all(t),
                "ratio_n": n_ratio,
                "ratio": None if n_ratio is None else t[n_ratio] / base[n_ratio],
                "crossover": None if mixer == BASELINE else crossover_length(t, base),
                "has_baseline": bool(base),
                "not_ok": statuses,
            }
        )
    return out


def _crossover_text(s: dict[str, Any], lengths: list[int]) -> str:
    if s["mixer"] == BASELINE:
        return "baseline"
    if not s["has_baseline"] or not s["times"]:
        return "n/a"
    if s["crossover"] is None:
        return "never in range"
    first = min(n for n in s["times"] if n in lengths)
    return f"≤ {s['crossover']} (all measured)" if s["crossover"] == first else str(s["crossover"])


def verdict(claim: str, alpha: float | None) -> str:
    """Whether the fitted exponent matches the claimed class.

    Claimed ``O(n)`` / ``O(n log n)``: consistent when ``alpha <= 1.15``; claimed ``O(n^2)``:
    consistent when ``alpha >= 1.8``. ``alpha < 0.8`` is flagged as overhead-bound (the lengths
    are too short for the asymptotic class to show).
    """
    if not claim or alpha is None:
        return "—"
    quadratic = "^2" in claim or "²" in claim
    note = " (overhead-bound)" if alpha < 0.8 else ""
    if quadratic:
        return "consistent" if alpha >= 1.8 else f"below N^2 in range{note}"
    return f"consistent{note}" if alpha <= 1.15 else "GROWS FASTER than claimed"


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


# --------------------------------------------------------------------------------------------
# Tables and plot
# --------------------------------------------------------------------------------------------


def combos(rows: list[Row]) -> list[tuple[str, str]]:
    """(scope, dtype) pairs in first-seen order."""
    return list(dict.fromkeys((r.scope, r.dtype) for r in rows))


def table_rows(
    rows: list[Row], scope: str, dtype: str, claims: dict[str, str] | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the summary table of one (scope, dtype)."""
    claims = claims or {}
    lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
    header = [
        "mixer",
        *[f"{n} ms" for n in lengths],
        "alpha (upper half)",
        "alpha (all N)",
        "claimed",
        "measured vs claim",
        "x softmax (N)",
        "faster than softmax from N",
        "not ok",
    ]
    status = {(r.mixer, r.N): r.status for r in rows if r.scope == scope and r.dtype == dtype}
    body = []
    for s in summarize(rows, scope, dtype):
        cells = [s["mixer"]]
        for n in lengths:
            st = status.get((s["mixer"], n), "")
            cells.append(_f(s["times"].get(n), ".1f") if st == "ok" else st)
        ratio = "—" if s["ratio"] is None else f"{s['ratio']:.2f} ({s['ratio_n']})"
        claim = claims.get(s["mixer"], "")
        cells += [
            _f(s["alpha_upper"], ".2f"),
            _f(s["alpha_all"], ".2f"),
            claim or "—",
            verdict(claim, s["alpha_upper"]),
            ratio,
            _crossover_text(s, lengths),
            ", ".join(s["not_ok"]),
        ]
        body.append(cells)
    return header, body


def ratio_rows(rows: list[Row], scope: str, dtype: str) -> tuple[list[str], list[list[str]]]:
    """Header and cells of ``time / time_softmax`` per mixer and N (both completed)."""
    times = _series(rows, scope, dtype)
    base = times.get(BASELINE, {})
    lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
    body = [
        [m, *[f"{t[n] / base[n]:.2f}" if n in t and n in base else "—" for n in lengths]]
        for m, t in times.items()
    ]
    return ["mixer", *[str(n) for n in lengths]], body


def anchor_rows(rows: list[Row], scope: str, dtype: str) -> tuple[list[str], list[list[str]]]:
    """Header and one row of ``time_softmax / time_anchor`` per N (both completed).

    Empty when either series is missing.
    """
    times = _series(rows, scope, dtype)
    base, anchor = times.get(BASELINE, {}), times.get(ANCHOR, {})
    lengths = sorted(set(base) & set(anchor))
    if not lengths:
        return [], []
    cells = [f"{base[n] / anchor[n]:.2f}" for n in lengths]
    return ["", *[str(n) for n in lengths]], [[f"{BASELINE} / {ANCHOR}", *cells]]


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]


def _timing_sentence(meta: dict[str, Any]) -> str:
    """The "Time:" sentence for ``meta["timing"]`` (``eager`` when absent)."""
    if meta.get("timing", "eager") == "compiled":
        return (
            "Time: median of the timed replays of one CUDA graph (`--timing compiled`) that "
            "holds the whole forward+backward step of the module compiled by `torch.compile` "
            "(default mode; captured after two untimed steps that compile it), so it is the "
            "device's time of the compiled step, compilation excluded; peak memory is from a "
            "step of the compiled module launched from Python."
        )
    if meta.get("timing", "eager") == "graph":
        return (
            "Time: median of the timed replays of one CUDA graph (`--timing graph`) that holds "
            "the whole forward+backward step (captured after warm-up steps), so it is the "
            "device's time without the host's launch overhead; peak memory is from an eager "
            "step."
        )
    return (
        "Time: median of the timed repeats after one warm-up step (`--timing eager`), each "
        "step launched from Python with the device synchronised before and after, so at small N "
        "it includes the host's launch time."
    )


def _intro_lines(meta: dict[str, Any]) -> list[str]:
    """Title and the definitions of every column."""
    lines = [
        "# Scaling: forward+backward time and peak memory against sequence length N",
        "",
        f"Step: `f(x).backward(g)` on x of shape (batch={meta['batch']}, N, "
        f"hidden={meta['hidden']}), {meta['heads']} heads where the mixer has heads, no "
        "padding mask, g a fixed N(0, 1) gradient of the output (no loss kernels in the "
        f"step). {_timing_sentence(meta)} "
        "**alpha**: least-squares slope of log time against log N on the upper half of the "
        "lengths the mixer completed (and on all of them). **x softmax**: time divided by the "
        "softmax (SDPA) layer's at the largest length both completed. **faster from N**: the "
        "smallest measured N from which the mixer beats softmax at every larger measured N "
        "(softmax out of memory/time counts as slower). **measured vs claim**: the registry's "
        "claimed class against alpha (upper half): O(n)/O(n log n) are consistent at alpha <= "
        "1.15, O(n^2) at alpha >= 1.8; alpha < 0.8 means fixed overheads still dominate, so the "
        "lengths are too short to show the class. The table shows what was measured, not what "
        "the docstrings claim.",
        f"`{ANCHOR}` is not a library mixer: it is plain PyTorch attention (fused q, k, v and "
        "output projections around one `scaled_dot_product_attention` call, no mask, no dropout), "
        "the floor the softmax layer is measured against.",
        f"Layer scope: the mixer alone. Model scope: {meta['model']}.",
        f"Peak memory: {meta['memory']}.",
        "",
    ]
    if meta.get("partial"):
        lines += [f"**{meta['partial']}**", ""]
    return lines


def _combo_lines(rows: list[Row], scope: str, dtype: str, meta: dict[str, Any]) -> list[str]:
    """The time, relative-time and memory tables of one (scope, dtype)."""
    lines = [f"## {scope}, {dtype}", ""]
    lines += _md_table(*table_rows(rows, scope, dtype, meta.get("claims"))) + [""]
    lines += [f"Time relative to the softmax layer at each N, {scope}, {dtype}:", ""]
    lines += _md_table(*ratio_rows(rows, scope, dtype)) + [""]
    header, body = anchor_rows(rows, scope, dtype)
    if body:
        lines += [
            f"The softmax layer against `{ANCHOR}` (plain PyTorch: q, k, v and output "
            f"projections around one `scaled_dot_product_attention` call, no mask), {scope}, "
            f"{dtype}:",
            "",
            *_md_table(header, body),
            "",
        ]
    lines += [f"Peak memory (MiB), {scope}, {dtype}:", ""]
    lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
    mem = _series(rows, scope, dtype, "peak_mem_bytes")
    mixers = list(dict.fromkeys(r.mixer for r in rows if r.scope == scope and r.dtype == dtype))
    body = [
        [m, *[_f(mem.get(m, {}).get(n, None) and mem[m][n] / 2**20, ".1f") for n in lengths]]
        for m in mixers
    ]
    return lines + _md_table(["mixer", *[str(n) for n in lengths]], body) + [""]


def _error_lines(rows: list[Row]) -> list[str]:
    """The configurations that failed, ran out of memory or over budget (or ``None.``)."""
    bad = [r for r in rows if r.status not in ("ok", "skipped")]
    lines = ["## Errors, out-of-memory and over-budget configurations", ""]
    if not bad:
        return [*lines, "None."]
    return lines + _md_table(
        ["mixer", "scope", "dtype", "N", "status", "message"],
        [[r.mixer, r.scope, r.dtype, str(r.N), r.status, r.message[:200]] for r in bad],
    )


def _provenance_lines(meta: dict[str, Any]) -> list[str]:
    """Command, commit, device, versions and date of the measurement."""
    return [
        "",
        "## Provenance",
        "",
        f"- command: `{meta['command']}`",
        f"- git commit: `{meta['git_commit']}`",
        f"- device: {meta['device']}",
        f"- torch: {meta['torch']}",
        f"- date: {meta['date']}",
        f"- repeats: {meta['repeats']}, per-config budget: {meta['budget']} s",
        f"- host load: {meta.get('load', 'n/a')}",
        "- raw rows: `scaling.csv`; plot: `scaling.png`",
        "",
    ]


def write_markdown(rows: list[Row], path: Path, meta: dict[str, Any]) -> None:
    """``scaling.md``: per (scope, dtype) the time/alpha/crossover table, errors, provenance."""
    lines = _intro_lines(meta)
    for scope, dtype in combos(rows):
        lines += _combo_lines(rows, scope, dtype, meta)
    lines += _error_lines(rows) + _provenance_lines(meta)
    path.write_text("\n".join(lines))


_PANELS = (
    ("time_ms", "forward+backward time (ms)"),
    ("peak_mem_bytes", "peak memory (MiB)"),
)
"""The two panels of a figure row: the measured key and its axis label."""


def _mixer_styles(mixers: list[str], plt: Any) -> dict[str, dict[str, Any]]:
    """Line style per mixer: the baseline thick and black, the others from tab20 (no greys)."""
    tab20 = plt.get_cmap("tab20").colors
    order = [0, 2, 4, 6, 8, 10, 12, 16, 18, 1, 3, 5, 7, 9, 11, 13, 17, 19]  # no greys (14, 15)
    palette = [tab20[i] for i in order]
    return {
        m: {
            "color": "black" if m == BASELINE else palette[i % len(palette)],
            "lw": 2.6 if m == BASELINE else 1.6,
            "ls": ("-", "--", "-.", ":")[i % 4] if m != BASELINE else "-",
            "marker": "os^vD<>ph*"[i % 10],
            "ms": 4,
        }
        for i, m in enumerate(mixers)
    }


def _plot_series(
    ax: Any,
    rows: list[Row],
    combo: tuple[str, str],
    key: str,
    series: dict[str, dict[int, float]],
    styles: dict[str, dict[str, Any]],
) -> None:
    """One line per mixer; a cross at the first out-of-memory length on the time panel."""
    scope, dtype = combo
    scale = 1.0 if key == "time_ms" else 1 / 2**20
    for m, style in styles.items():
        if m not in series or not series[m]:
            continue
        ns = sorted(series[m])
        ax.plot(ns, [series[m][n] * scale for n in ns], label=m, **style)
        oom = [
            r.N
            for r in rows
            if r.mixer == m and r.scope == scope and r.dtype == dtype and r.status == "oom"
        ]
        if oom and key == "time_ms":
            ax.plot(
                [oom[0]],
                [series[m][ns[-1]] * scale],
                marker="x",
                ms=10,
                color=style["color"],
                ls="none",
            )


def _format_panel(
    ax: Any,
    rows: list[Row],
    combo: tuple[str, str],
    key: str,
    ylabel: str,
    series: dict[str, dict[int, float]],
) -> None:
    """Log-log axes with the measured lengths as ticks, guides, labels and title."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    scope, dtype = combo
    if not series:
        ax.text(
            0.5,
            0.5,
            "n/a (not measured on this device)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    elif key == "time_ms":
        values = [v for ser in series.values() for v in ser.values()]
        _guides(ax, series)
        ax.set_ylim(min(values) / 1.5, max(values) * 1.5)
    ax.set_xscale("log", base=2)
    lengths = sorted({r.N for r in rows if r.scope == scope and r.dtype == dtype})
    ax.set_xticks(lengths, [str(n) for n in lengths], rotation=45 if len(lengths) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    if series:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
    ax.set_xlabel("sequence length N (tokens)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{'time' if key == 'time_ms' else 'memory'}: {scope}, {dtype}")
    ax.grid(True, which="both", alpha=0.3)


def plot(rows: list[Row], path: Path, title: str) -> None:
    """Log-log time and memory against N: one row of two panels per (scope, dtype)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = combos(rows)
    styles = _mixer_styles(list(dict.fromkeys(r.mixer for r in rows)), plt)
    fig, axes = plt.subplots(len(pairs), 2, figsize=(13, 4.6 * len(pairs)), dpi=110, squeeze=False)
    for row_axes, combo in zip(axes, pairs):
        for ax, (key, ylabel) in zip(row_axes, _PANELS):
            series = _series(rows, *combo, key)
            _plot_series(ax, rows, combo, key, series, styles)
            _format_panel(ax, rows, combo, key, ylabel, series)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.84, 0.97))
    fig.savefig(path)
    plt.close(fig)


def _minor_label(value: float, _pos: int) -> str:
    """Label minor log ticks 2 and 5 (x 10^k) only, in plain numbers."""
    if value <= 0:
        return ""
    lead = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""


def _guides(ax: Any, series: dict[str, dict[int, float]]) -> None:
    """Grey reference slopes N^1 and N^2 through the geometric middle of the data."""
    ns = sorted({n for s in series.values() for n in s})
    if len(ns) < 2:
        return
    ts = [t for s in series.values() for t in s.values()]
    mid_t = math.exp(statistics.fmean(math.log(t) for t in ts))
    n0 = ns[0]
    for power, label, ls in ((1, "slope 1 (∝ N)", "-."), (2, "slope 2 (∝ N²)", ":")):
        ys = [mid_t * (n / n0) ** power / (ns[-1] / n0) ** (power / 2) for n in ns]
        ax.plot(ns, ys, color="grey", lw=1.2, ls=ls, label=label)


def print_tables(rows: list[Row], claims: dict[str, str] | None = None) -> None:
    """The summary tables with rich (plain text when rich is missing)."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover
        for scope, dtype in combos(rows):
            header, body = table_rows(rows, scope, dtype, claims)
            print(f"{scope}, {dtype}\n" + "\n".join("\t".join(r) for r in [header, *body]))
        return
    console = Console(width=260)
    for scope, dtype in combos(rows):
        header, body = table_rows(rows, scope, dtype, claims)
        table = Table(title=f"scaling: {scope}, {dtype} (time in ms)")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for cells in body:
            table.add_row(*cells)
        console.print(table)
