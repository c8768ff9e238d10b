"""Per-cell statistics, task averages and table rows from the usable run records.

Averages over tasks are the plain means of the per-task means:
``avg5 = (1/5) sum_{t in T5} mean_t`` and ``avg6 = (avg5 * 5 + pathx) / 6`` with
``pathx = 50`` when no completed Path-X run exists.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from experiments.results_load import table_label, tasks, tasks5
from experiments.run_record import RunRecord

FEATURE_MAPS = {
    "performer": "FAVOR+, 256 orthogonal features",
    "lra-performer": "LRA Performer: FAVOR+ 2 features on ListOps, ReLU kernel elsewhere",
}
"""Performer variants are named by their feature map in the tables."""


PATHX_FAIL_SCORE = 50.0


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
    at_chance: int = 0
    """Seeds whose accuracy is within :data:`CHANCE_MARGIN` of their :func:`chance_level`."""

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
        chance = f", {self.at_chance} at chance" if self.at_chance else ""
        return f"{self.mean:.2f}{std} (n={self.n}{chance})"


def accuracy_cells(runs: list[RunRecord]) -> dict[str, dict[str, CellStats]]:
    """Map variant -> task -> test accuracy statistics in percent."""
    cells: dict[str, dict[str, CellStats]] = defaultdict(lambda: defaultdict(CellStats))
    for rec in runs:
        cell = cells[table_label(rec)][rec.task]
        cell.values.append(100.0 * float(rec.data["test_acc"]))
        cell.at_chance += at_chance(rec.data)
    return cells


CHANCE_MARGIN = 0.01
"""A run is at chance when its test accuracy is at most the chance level plus this."""


def chance_level(data: dict[str, Any]) -> float | None:
    """Test accuracy of the best answer that ignores the input, as far as a record tells it.

    ``chance_acc`` is the test accuracy of always answering the training split's most
    frequent label. On a two-class task the other constant answer scores ``1 - chance_acc``
    on the same split, so the level is ``max(chance_acc, 1 - chance_acc)`` there: with a
    training majority that is the test minority (Pathfinder-32: 49.36 %), a model that
    always answers the other class tests at 50.64 % and has learned nothing either. With
    more classes only ``chance_acc`` is known. None when the record has no ``chance_acc``.
    """
    chance = data.get("chance_acc")
    if not isinstance(chance, int | float) or isinstance(chance, bool):
        return None
    if _num_classes(data.get("task")) == 2:
        return max(float(chance), 1.0 - float(chance))
    return float(chance)


def _num_classes(task: Any) -> int | None:
    """Labels of a registered task's data module, or None for an unknown task."""
    from experiments.data import registry

    try:
        return int(registry.get_entry(str(task)).cls.num_classes)
    except (KeyError, AttributeError):
        return None


def at_chance(data: dict[str, Any]) -> bool:
    """Whether a record's ``test_acc`` is within :data:`CHANCE_MARGIN` of :func:`chance_level`.

    A record without ``chance_acc`` is not judged.
    """
    level = chance_level(data)
    return level is not None and float(data["test_acc"]) <= level + CHANCE_MARGIN


def chance_text(data: dict[str, Any]) -> str:
    """How a record's accuracy is qualified in the tables: ``""`` or ``"at chance"``.

    ``"at chance, dead head"`` when the record also says that no unit of its classifier head
    was live at its last validation (``head_live_units == 0``).
    """
    if not at_chance(data):
        return ""
    return "at chance, dead head" if data.get("head_live_units") == 0 else "at chance"


def task_averages(means: dict[str, float]) -> tuple[float | None, float | None]:
    """(5-task average, 6-task average) of per-task mean accuracies in percent.

    ``avg5 = mean(means[t] for t in tasks5())`` (None unless all five are present);
    ``avg6 = (5 * avg5 + means.get('pathx', 50)) / 6``.
    """
    if any(t not in means for t in tasks5()):
        return None, None
    avg5 = statistics.fmean(means[t] for t in tasks5())
    return avg5, (5 * avg5 + means.get("pathx", PATHX_FAIL_SCORE)) / 6


def fmt_percent(x: float | None) -> str:
    """A percentage with two decimals, or an em dash for a missing value."""
    return "—" if x is None else f"{x:.2f}"


def failed_counts(excluded: list[RunRecord]) -> dict[tuple[str, str], int]:
    """(variant, task) -> number of records with ``status=failed``."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for rec in excluded:
        if rec.data.get("status") == "failed" and rec.task in tasks():
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
        for task in tasks():
            stats = by_task.get(task)
            row[f"{task}_mean"] = None if stats is None else stats.mean
            row[f"{task}_std"] = None if stats is None else stats.std
            row[f"{task}_n"] = 0 if stats is None else stats.n
            row[f"{task}_at_chance"] = 0 if stats is None else stats.at_chance
            k = failed.get((variant, task), 0)
            empty = f"failed ({k})" if k else "—"
            row[f"{task}_text"] = empty if stats is None else stats.text()
            row[f"{task}_failed"] = k
        row["avg5"], row["avg6"] = task_averages({t: s.mean for t, s in by_task.items()})
        rows.append(row)
    for name, accs, pathx, source in REFERENCES:
        row = {"kind": "reference", "variant": name, "source": source}
        means = dict(zip(tasks5(), accs, strict=True))
        if pathx is not None:
            means["pathx"] = pathx
        for task in tasks():
            row[f"{task}_mean"] = means.get(task)
            row[f"{task}_std"] = None
            row[f"{task}_n"] = None
            row[f"{task}_text"] = fmt_percent(means.get(task)) if task in means else "FAIL/—"
        row["avg5"], row["avg6"] = task_averages(means)
        rows.append(row)
    return rows


def mean_of(runs: list[RunRecord], key: str) -> float | None:
    """Mean of the numeric ``key`` over ``runs``; None when no run recorded it."""
    values = [float(r.data[key]) for r in runs if isinstance(r.data.get(key), int | float)]
    return statistics.fmean(values) if values else None


def efficiency_groups(runs: list[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """(task, variant) -> completed runs."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for rec in runs:
        groups[(rec.task, table_label(rec))].append(rec)
    return groups


def pareto_points(
    task: str, runs: list[RunRecord], key: str = "train_tokens_per_s"
) -> list[tuple[str, float, float, float, int]]:
    """``(variant, x, mean acc %, sample std %, seeds)`` of every variant of ``task``.

    ``x`` is the seeds' mean of the record field ``key`` (train tokens/s by default, or
    ``peak_memory_bytes``). Variants without that field are left out.
    """
    points = []
    for (t, variant), group in sorted(efficiency_groups(runs).items()):
        x = mean_of(group, key)
        if t != task or x is None:
            continue
        accs = [100.0 * float(r.data["test_acc"]) for r in group]
        std = statistics.stdev(accs) if len(accs) >= 2 else 0.0
        points.append((variant, x, statistics.fmean(accs), std, len(accs)))
    return points
