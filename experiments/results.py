"""Aggregate every run record (``metrics.json``) into the LRA tables and plots in ``results/``.

Usage::

    python -m experiments.results [--runs DIR ...] [--out results/]

Reads every ``metrics.json`` below the run folders (default ``runs/``, ``outputs/``,
``multirun/`` and ``results/runs/``), never modifies them, and writes:

- ``lra_accuracy.md`` / ``lra_accuracy.csv``: one row per variant, one column per task, each
  cell the test accuracy (``test_acc``: the final model, the LRA protocol) in percent as
  mean ± sample std over seeds with the seed count ``n``;
  the 5-task average (Path-X excluded) and the 6-task average where a missing or failed Path-X
  counts as 50 %; the LRA reference rows beside ours, marked as references.
- ``efficiency.md``: parameters, train/eval tokens per second and peak memory per task and
  variant.
- ``pareto_<task>.png``: test accuracy against train throughput, one point per variant.

Averages over tasks are the plain means of the per-task means:
``avg5 = (1/5) sum_{t in T5} mean_t`` and ``avg6 = (avg5 * 5 + pathx) / 6`` with
``pathx = 50`` when no completed Path-X run exists. A variant missing any of the five tasks has
no average. Failed, running and malformed records are listed in their own section and never
enter a mean. Only protocol runs (``protocol: lra``, :mod:`experiments.protocol`) enter the
tables unless ``--protocols`` says otherwise; the others are listed with their kind.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.data.registry import names as task_names
from experiments.protocol import PROTOCOLS, classify
from experiments.run_record import RunRecord, git_commit

FEATURE_MAPS = {
    "performer": "FAVOR+, 256 orthogonal features",
    "lra-performer": "LRA Performer: FAVOR+ 2 features on ListOps, ReLU kernel elsewhere",
}
"""Performer variants are named by their feature map in the tables."""

TASKS: tuple[str, ...] = task_names()
"""Table columns: every registered task, in registry order (:mod:`experiments.data.registry`)."""
TASKS5: tuple[str, ...] = TASKS[:5]
"""The five tasks of LRA's 5-task average (the first five in registry order)."""
PATHX_FAIL_SCORE = 50.0


def _shown(path: Path) -> str:
    """A record's path relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


DEFAULT_RUN_DIRS: tuple[str, ...] = ("runs", "outputs", "multirun", "results/runs")
REQUIRED_FIELDS: tuple[str, ...] = ("status", "task", "test_acc")

# Reference test accuracies (%), from docs/lra_protocol.md "Reference accuracy" (Path-X: None =
# not reported or failed; the 6-task average counts it as 50 like the S4-era papers do).
REFERENCES: tuple[tuple[str, tuple[float, ...], float | None, str], ...] = (
    ("Transformer", (36.37, 64.27, 57.46, 42.44, 71.40), None, "LRA paper"),
    ("Performer", (18.01, 65.40, 53.82, 42.77, 77.05), None, "LRA paper"),
    ("Linear Trans.", (16.13, 65.90, 53.09, 42.34, 75.30), None, "LRA paper"),
    ("Linformer", (35.70, 53.94, 52.27, 38.56, 76.34), None, "LRA paper"),
    ("BigBird", (36.05, 64.02, 59.29, 40.83, 74.87), None, "LRA paper"),
    ("FNet", (35.33, 65.11, 59.61, 38.67, 77.80), None, "FNet paper"),
    ("Standard (PyTorch)", (37.10, 65.02, 79.35, 38.20, 74.16), None, "Nystromformer"),
    ("Favor-256", (19.56, 62.76, 81.10, 36.09, 67.23), None, "xformers"),
    ("FourierMix", (36.29, 60.72, 76.41, 36.53, 54.07), None, "xformers"),
    ("S4 (updated)", (59.60, 86.82, 90.90, 88.65, 94.20), 96.35, "S4 paper"),
)


@dataclass
class CellStats:
    """Mean, sample standard deviation and count of one (variant, task) cell, in percent."""

    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        """Number of seeds."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """Arithmetic mean."""
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        """Sample std ``sqrt(sum (x - mean)^2 / (n - 1))``; None for a single seed."""
        return statistics.stdev(self.values) if self.n >= 2 else None

    def text(self) -> str:
        """``mean ± std (n)`` for the markdown table."""
        std = "" if self.std is None else f" ± {self.std:.2f}"
        return f"{self.mean:.2f}{std} (n={self.n})"


# --------------------------------------------------------------------------------------------
# Reading records
# --------------------------------------------------------------------------------------------


def find_metric_files(run_dirs: list[Path]) -> list[Path]:
    """Every ``metrics.json`` below the existing run folders, sorted, without duplicates."""
    found: set[Path] = set()
    for root in run_dirs:
        if root.is_dir():
            found.update(p.resolve() for p in root.rglob("metrics.json") if p.is_file())
    return sorted(found)


def _check(data: dict[str, Any]) -> str | None:
    """Why a record cannot be averaged in, or None when it can."""
    missing = [k for k in REQUIRED_FIELDS if data.get(k) is None]
    if data.get("status") not in (None, "completed"):
        reason = data.get("failure_reason") or "no failure_reason recorded"
        return f"status={data.get('status')}: {reason}"
    planned = ((data.get("config") or {}).get("trainer") or {}).get("max_steps")
    steps = data.get("steps")
    if isinstance(planned, int) and planned > 0 and isinstance(steps, int) and steps < planned:
        return f"stopped at step {steps} of trainer.max_steps={planned} (recorded as completed)"
    if missing:
        return f"missing field(s): {', '.join(missing)}"
    if not (data.get("variant") or data.get("attention") or data.get("model")):
        return "missing field(s): variant (and attention/model)"
    acc = data["test_acc"]
    if not isinstance(acc, int | float) or isinstance(acc, bool) or not 0.0 <= acc <= 1.0:
        return f"test_acc={acc!r} is not a fraction in [0, 1]"
    if data["task"] not in TASKS:
        return f"unknown task {data['task']!r}; expected one of {', '.join(TASKS)}"
    return None


def record_protocol(data: dict[str, Any]) -> tuple[str, str]:
    """``(protocol, why)``: the recorded ``protocol``, or one inferred from the config."""
    if data.get("protocol") in PROTOCOLS:
        return str(data["protocol"]), "recorded"
    return classify(data.get("config"))


def load_record(path: Path) -> RunRecord:
    """Read one ``metrics.json`` (read-only); malformed files become records with a problem."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return RunRecord.from_data(path, {}, f"unreadable: {err}")
    if not isinstance(data, dict):
        return RunRecord.from_data(path, {}, "unreadable: top level is not a JSON object")
    return RunRecord.from_data(path, data, _check(data))


def table_label(rec: RunRecord) -> str:
    """The row name: the variant, with ``[custom]``/``[debug]`` for runs off the protocol."""
    protocol = record_protocol(rec.data)[0]
    return rec.variant if protocol == "lra" else f"{rec.variant} [{protocol}]"


def split_records(
    records: list[RunRecord], protocols: tuple[str, ...] = ("lra",)
) -> tuple[list[RunRecord], list[RunRecord]]:
    """Split into usable runs and excluded ones.

    Only runs of the given ``protocols`` are usable; the others are excluded with their kind
    and why. Runs of different kinds never share a row (non-``lra`` rows are labelled, see
    :func:`table_label`), so one never replaces another. A repeated (row, task, seed) keeps
    the latest ``finished_at``; the others are excluded as duplicates (archived copies).
    """
    usable: dict[tuple[str, str, str], RunRecord] = {}
    excluded = [r for r in records if r.problem is not None]
    for rec in (r for r in records if r.problem is None):
        protocol, why = record_protocol(rec.data)
        if protocol not in protocols:
            rec.problem = (
                f"protocol={protocol} ({why}); the tables take {', '.join(protocols)} runs "
                f"(add --protocols {protocol} to include it)"
            )
            excluded.append(rec)
            continue
        key = (table_label(rec), rec.task, repr(rec.seed))
        old = usable.get(key)
        if old is None:
            usable[key] = rec
            continue
        newer, older = sorted(
            (rec, old), key=lambda r: str(r.data.get("finished_at") or ""), reverse=True
        )
        older.problem = f"duplicate of {_shown(newer.path)} (same kind, variant, task and seed)"
        usable[key] = newer
        excluded.append(older)
    return list(usable.values()), excluded


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def accuracy_cells(runs: list[RunRecord]) -> dict[str, dict[str, CellStats]]:
    """Map variant -> task -> test accuracy statistics in percent."""
    cells: dict[str, dict[str, CellStats]] = defaultdict(lambda: defaultdict(CellStats))
    for rec in runs:
        cells[table_label(rec)][rec.task].values.append(100.0 * float(rec.data["test_acc"]))
    return cells


def task_averages(means: dict[str, float]) -> tuple[float | None, float | None]:
    """(5-task average, 6-task average) of per-task mean accuracies in percent.

    ``avg5 = mean(means[t] for t in TASKS5)`` (None unless all five are present);
    ``avg6 = (5 * avg5 + means.get('pathx', 50)) / 6``.
    """
    if any(t not in means for t in TASKS5):
        return None, None
    avg5 = statistics.fmean(means[t] for t in TASKS5)
    return avg5, (5 * avg5 + means.get("pathx", PATHX_FAIL_SCORE)) / 6


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def failed_counts(excluded: list[RunRecord]) -> dict[tuple[str, str], int]:
    """(variant, task) -> number of records with ``status=failed``."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for rec in excluded:
        if rec.data.get("status") == "failed" and rec.task in TASKS:
            counts[(table_label(rec), rec.task)] += 1
    return counts


def accuracy_rows(
    cells: dict[str, dict[str, CellStats]], failed: dict[tuple[str, str], int] | None = None
) -> list[dict[str, Any]]:
    """One flat dict per variant (ours) and per reference row, for csv and markdown.

    A cell with no completed run but ``k`` failed ones reads ``failed (k)``; variants whose
    runs all failed still get a row.
    """
    failed = failed or {}
    rows: list[dict[str, Any]] = []
    for variant in sorted(set(cells) | {v for v, _ in failed}):
        by_task = cells.get(variant, {})
        source = f"this repo ({FEATURE_MAPS[variant]})" if variant in FEATURE_MAPS else "this repo"
        row: dict[str, Any] = {"kind": "ours", "variant": variant, "source": source}
        for task in TASKS:
            stats = by_task.get(task)
            row[f"{task}_mean"] = None if stats is None else stats.mean
            row[f"{task}_std"] = None if stats is None else stats.std
            row[f"{task}_n"] = 0 if stats is None else stats.n
            k = failed.get((variant, task), 0)
            empty = f"failed ({k})" if k else "—"
            row[f"{task}_text"] = empty if stats is None else stats.text()
            row[f"{task}_failed"] = k
        row["avg5"], row["avg6"] = task_averages({t: s.mean for t, s in by_task.items()})
        rows.append(row)
    for name, accs, pathx, source in REFERENCES:
        row = {"kind": "reference", "variant": name, "source": source}
        means = dict(zip(TASKS5, accs, strict=True))
        if pathx is not None:
            means["pathx"] = pathx
        for task in TASKS:
            row[f"{task}_mean"] = means.get(task)
            row[f"{task}_std"] = None
            row[f"{task}_n"] = None
            row[f"{task}_text"] = _fmt(means.get(task)) if task in means else "FAIL/—"
        row["avg5"], row["avg6"] = task_averages(means)
        rows.append(row)
    return rows


def write_accuracy_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Machine-readable accuracy table (percent; empty cells for missing values)."""
    columns = ["kind", "variant", "source"]
    for task in TASKS:
        columns += [f"{task}_mean", f"{task}_std", f"{task}_n", f"{task}_failed"]
    columns += ["avg5", "avg6"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: (
                        ""
                        if row.get(k) is None
                        else (f"{row[k]:.4f}" if isinstance(row[k], float) else row[k])
                    )
                    for k in columns
                }
            )


def provenance(command: str, records: list[RunRecord], run_dirs: list[Path]) -> str:
    """Markdown block: command, git commit, date, devices and run folders."""
    devices = sorted({str(r.data["device"]) for r in records if r.data.get("device")})
    commits = sorted({str(r.data["git_commit"]) for r in records if r.data.get("git_commit")})
    return "\n".join(
        [
            "## Provenance",
            "",
            f"- command: `{command}`",
            f"- git commit (aggregator): `{git_commit()}`",
            f"- git commits (runs): {', '.join(f'`{c}`' for c in commits) or 'none recorded'}",
            f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- devices in the records: {', '.join(devices) or 'none recorded'}",
            f"- run folders scanned: {', '.join(f'`{d}`' for d in run_dirs)}"
            f" ({len(records)} metrics.json found)",
            "",
        ]
    )


def excluded_section(excluded: list[RunRecord]) -> str:
    """Markdown list of the records that were not averaged in."""
    lines = ["## Incomplete, failed or excluded runs (not averaged in)", ""]
    if not excluded:
        return "\n".join(lines + ["None.", ""])
    lines += ["| task | variant | seed | status | reason | file |", "|---|---|---|---|---|---|"]
    for rec in sorted(excluded, key=lambda r: (r.task, r.variant, str(r.seed))):
        status = rec.data.get("status", "?")
        reason = str(rec.problem).replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {rec.task} | {rec.variant} | {rec.seed} | {status} | {reason} "
            f"| `{_shown(rec.path)}` |"
        )
    return "\n".join(lines + [""])


def accuracy_markdown(rows: list[dict[str, Any]], excluded: list[RunRecord], prov: str) -> str:
    """``lra_accuracy.md``: our rows, then the references, then the excluded runs."""
    header = "| | variant | " + " | ".join(TASKS) + " | avg (5) | avg (6) | source |"
    sep = "|---" * (len(TASKS) + 5) + "|"
    lines = [
        "# LRA test accuracy (%)",
        "",
        "Cells: test accuracy of the final model (the LRA protocol), mean ± sample std over "
        "seeds (n = number of seeds); a single seed has no std.",
        "**avg (5)** is the mean of the five per-task means (Path-X excluded), shown only when "
        "all five tasks have a completed run. **avg (6)** = (5 · avg (5) + Path-X) / 6, where a "
        "missing or failed Path-X counts as **50** (the S4-era convention; it applies when no "
        "Path-X seed completed, otherwise the completed seeds' mean is used).",
        "Rows marked **ref** are published numbers copied from `docs/lra_protocol.md` "
        "(source column), not runs of this repository; their Path-X column reads FAIL/— where "
        "the source reports none.",
        "",
        header,
        sep,
    ]
    if not any(row["kind"] == "ours" for row in rows):
        lines.insert(-2, "No completed run was found in the run folders (see Provenance).\n")
    for row in rows:
        mark = "ours" if row["kind"] == "ours" else "**ref**"
        cells = " | ".join(row[f"{t}_text"] for t in TASKS)
        lines.append(
            f"| {mark} | {row['variant']} | {cells} | {_fmt(row['avg5'])} | "
            f"{_fmt(row['avg6'])} | {row['source']} |"
        )
    return "\n".join(lines + ["", excluded_section(excluded), prov])


def _mean_of(runs: list[RunRecord], key: str) -> float | None:
    values = [float(r.data[key]) for r in runs if isinstance(r.data.get(key), int | float)]
    return statistics.fmean(values) if values else None


def _human_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def efficiency_groups(runs: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """(task, variant) -> completed runs."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for rec in runs:
        groups[(rec.task, table_label(rec))].append(rec)
    return groups


def efficiency_markdown(runs: list[RunRecord], excluded: list[RunRecord], prov: str) -> str:
    """``efficiency.md``: params, tokens/s and peak memory per task and variant."""
    lines = [
        "# Efficiency per task and variant (completed runs)",
        "",
        "Means over seeds of the values recorded by each run; peak memory is the maximum over "
        "seeds and its kind says what was measured (`cuda_max_allocated` = "
        "torch.cuda.max_memory_allocated, `cpu_max_rss` = peak resident set size of the process).",
        "",
        "| task | variant | n | params | train tokens/s | eval tokens/s | peak memory "
        "| memory kind | precision | device |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = efficiency_groups(runs)
    order = {t: i for i, t in enumerate(TASKS)}
    for (task, variant), group in sorted(
        groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])
    ):
        params = _mean_of(group, "num_params")
        train_tps = _mean_of(group, "train_tokens_per_s")
        eval_tps = _mean_of(group, "eval_tokens_per_s")
        mems = [
            float(r.data["peak_memory_bytes"])
            for r in group
            if isinstance(r.data.get("peak_memory_bytes"), int | float)
        ]
        kinds = sorted({str(r.data.get("peak_memory_kind", "?")) for r in group})
        precisions = sorted({str(r.data.get("precision", "?")) for r in group})
        devices = sorted({str(r.data.get("device", "?")) for r in group})
        lines.append(
            f"| {task} | {variant} | {len(group)} | "
            f"{'—' if params is None else f'{params:,.0f}'} | "
            f"{'—' if train_tps is None else f'{train_tps:,.0f}'} | "
            f"{'—' if eval_tps is None else f'{eval_tps:,.0f}'} | "
            f"{_human_bytes(max(mems) if mems else None)} | {', '.join(kinds)} | "
            f"{', '.join(precisions)} | {', '.join(devices)} |"
        )
    return "\n".join(lines + ["", excluded_section(excluded), prov])


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


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


def pareto_points(task: str, runs: list[RunRecord]) -> list[tuple[str, float, float, float, int]]:
    """``(variant, tokens/s, mean acc %, sample std %, seeds)`` of every variant of ``task``.

    Variants without a train throughput are left out.
    """
    points = []
    for (t, variant), group in sorted(efficiency_groups(runs).items()):
        tps = _mean_of(group, "train_tokens_per_s")
        if t != task or tps is None:
            continue
        accs = [100.0 * float(r.data["test_acc"]) for r in group]
        std = statistics.stdev(accs) if len(accs) >= 2 else 0.0
        points.append((variant, tps, statistics.fmean(accs), std, len(accs)))
    return points


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
    if task in TASKS5:
        idx = TASKS5.index(task)
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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def aggregate(
    run_dirs: list[Path], out_dir: Path, command: str, protocols: tuple[str, ...] = ("lra",)
) -> dict[str, Any]:
    """Read the records under ``run_dirs`` and write every table and plot into ``out_dir``.

    Only runs whose ``protocol`` is in ``protocols`` enter the tables (see
    :func:`split_records`); the others are listed as excluded with the reason.

    Returns:
        A summary: ``records``, ``usable``, ``excluded`` counts, ``rows`` and written ``files``.
    """
    records = [load_record(p) for p in find_metric_files(run_dirs)]
    usable, excluded = split_records(records, protocols)
    out_dir.mkdir(parents=True, exist_ok=True)
    prov = provenance(command, records, run_dirs)
    rows = accuracy_rows(accuracy_cells(usable), failed_counts(excluded))
    files = [out_dir / "lra_accuracy.md", out_dir / "lra_accuracy.csv", out_dir / "efficiency.md"]
    plots = [out_dir / f"pareto_{task}.png" for task in TASKS]
    plots = [png for task, png in zip(TASKS, plots) if pareto_plot(task, usable, png)]
    plot_lines = (
        ["## Plots", ""]
        + [
            f"- `{png.name}`: test accuracy (%) against train throughput (tokens/s), one point per "
            "variant (mean ± std over seeds), from the completed runs of this file"
            for png in plots
        ]
        + ([""] if plots else ["No plot: no completed run.", ""])
    )
    plots_and_prov = "\n".join(plot_lines) + "\n" + prov
    files[0].write_text(accuracy_markdown(rows, excluded, plots_and_prov))
    write_accuracy_csv(rows, files[1])
    files[2].write_text(efficiency_markdown(usable, excluded, plots_and_prov))
    files += plots
    return {
        "records": len(records),
        "usable": len(usable),
        "excluded": len(excluded),
        "rows": rows,
        "files": files,
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        nargs="+",
        default=None,
        help="folders searched recursively for metrics.json (default: those of "
        f"{', '.join(DEFAULT_RUN_DIRS)} that exist)",
    )
    parser.add_argument("--out", default="results", help="output folder")
    parser.add_argument(
        "--protocols",
        nargs="+",
        choices=PROTOCOLS,
        default=["lra"],
        help="kinds of run that enter the tables (default: lra, the protocol runs)",
    )
    args = parser.parse_args(argv)
    missing = [d for d in args.runs or [] if not Path(d).is_dir()]
    if missing:
        print(
            f"error: --runs {missing[0]} is not a folder; pass folders that hold run "
            "directories (e.g. --runs runs results/runs)",
            file=sys.stderr,
        )
        return 2
    argv_used = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m experiments.results", *argv_used]).strip()
    run_dirs = [Path(d) for d in (args.runs or DEFAULT_RUN_DIRS)]
    summary = aggregate(run_dirs, Path(args.out), command, tuple(args.protocols))
    print(
        f"{summary['records']} records: {summary['usable']} averaged, "
        f"{summary['excluded']} excluded"
    )
    for path in summary["files"]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
