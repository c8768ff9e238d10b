"""The per-variant summary of the protocol runs that the README shows, and its per-run table.

``lra_summary.md`` holds one row per (task, variant): the seeds with each one's commit, the
test accuracy as mean ± sample std with every seed's value (``at chance`` where a seed tested
within one point of an answer that ignores the input,
:func:`experiments.results_aggregate.chance_level`), each seed's train tokens/s, the peak
memory over the seeds and the published figure it compares with. ``lra_runs.md`` lists the
runs one by one (steps, wall time, when each finished). Both are written by
``python -m experiments.results``; the README's accuracy table is the block between
:data:`README_START` and :data:`README_END` (``--readme README.md`` rewrites it), and a test
checks that it equals the summary of ``results/runs``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from experiments.report_text import replace_marked_block
from experiments.results_aggregate import REFERENCES, CellStats, chance_text
from experiments.results_load import shown_path, table_label, tasks
from experiments.run_record import RunRecord

README_START = "<!-- lra-summary:start (written by python -m experiments.results) -->"
README_END = "<!-- lra-summary:end -->"

VARIANT_REFERENCE = {
    "softmax": "Transformer",
    "fnet": "FNet",
    "lra-performer": "Performer",
    "performer": "Favor-256",
}
"""The published row (of :data:`~experiments.results_aggregate.REFERENCES`) of the same model
under an LRA recipe. The others have none: the LST, wavelet and Fourier-operator layers were
not run on LRA in their papers, and S4's figures are of a deeper S4 network trained with its own
recipe, not of an S4D layer in the LRA Transformer (``lra_accuracy.md`` lists every
reference row)."""


def reference_text(task: str, variant: str) -> str:
    """``<name> <accuracy> (<source>)`` for ``variant`` on ``task``, or ``""``."""
    name = VARIANT_REFERENCE.get(variant)
    for ref_name, scores, pathx, source in REFERENCES:
        if ref_name != name:
            continue
        task_scores = dict(zip(tasks(), (*scores, pathx), strict=False))
        score = task_scores.get(task)
        return "" if score is None else f"{ref_name} {score:.2f} ({source})"
    return ""


def _seed_key(rec: RunRecord) -> tuple[int, str]:
    seed = rec.seed
    return (seed, "") if isinstance(seed, int) else (10**9, str(seed))


def _groups(runs: list[RunRecord]) -> list[tuple[str, str, list[RunRecord]]]:
    """(task, variant label, its runs by seed), tasks in benchmark order, variants by name."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for rec in runs:
        groups[(rec.task, table_label(rec))].append(rec)
    order = {t: i for i, t in enumerate(tasks())}
    return [
        (task, variant, sorted(recs, key=_seed_key))
        for (task, variant), recs in sorted(
            groups.items(), key=lambda kv: (order.get(kv[0][0], len(order)), kv[0][1])
        )
    ]


def _millions(value: Any) -> str:
    return f"{float(value) / 1e6:.2f}M" if isinstance(value, int | float) else "n/a"


def _commit(rec: RunRecord) -> str:
    return f"`{str(rec.data.get('git_commit') or '?')[:7]}`"


def _accuracy(rec: RunRecord) -> float:
    return 100.0 * float(rec.data["test_acc"])


def summary_rows(runs: list[RunRecord]) -> list[str]:
    """The summary table's markdown lines (header included)."""
    lines = [
        "| task | variant | seeds (commit of each) | test acc (final model) | train tokens/s "
        "| peak memory | published |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, variant, recs in _groups(runs):
        stats = CellStats(values=[_accuracy(r) for r in recs])
        seeds = ", ".join(f"{r.seed} {_commit(r)}" for r in recs)
        each = [f"{_accuracy(r):.2f} {chance_text(r.data)}".rstrip() for r in recs]
        if len(recs) == 1:
            acc = each[0]
        else:
            acc = f"{stats.mean:.2f} ± {stats.std:.2f} ({', '.join(each)})"
        tokens = ", ".join(_millions(r.data.get("train_tokens_per_s")) for r in recs)
        peaks = [
            float(r.data["peak_memory_bytes"])
            for r in recs
            if isinstance(r.data.get("peak_memory_bytes"), int | float)
        ]
        peak = f"{max(peaks) / 2**30:.1f} GiB" if peaks else "n/a"
        lines.append(
            f"| {task} | {variant} | {seeds} | {acc} | {tokens} | {peak} "
            f"| {'' if ' [' in variant else reference_text(task, variant)} |"
        )
    return lines


SUMMARY_INTRO = (
    "Protocol runs, one row per task and variant: each seed with the commit its record "
    "names (a run resumed across commands names the commit of its last part), the test "
    "accuracy of the final model as mean ± sample std with each seed's value, each seed's "
    "train tokens/s (runs that shared a GPU or counted their compilation read low), the "
    "largest peak memory (`torch.cuda.max_memory_allocated`) and the published figure of "
    "the same model where one exists. Every run: `results/lra_runs.md`."
)


def summary_markdown(block: str, prov: str) -> str:
    """``lra_summary.md``: the README block of :func:`summary_block`, then provenance."""
    return "\n".join(["# LRA protocol runs: summary", "", block, "", prov])


def runs_markdown(runs: list[RunRecord], prov: str) -> str:
    """``lra_runs.md``: one row per completed protocol run."""
    lines = [
        "# LRA protocol runs, one by one",
        "",
        "| task | variant | seed | test acc | steps | wall min | train tokens/s | peak GiB "
        "| device | precision | commit | finished | folder |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, variant, recs in _groups(runs):
        for r in recs:
            d = r.data
            wall, peak = d.get("wall_time_s"), d.get("peak_memory_bytes")
            cells = [
                task,
                variant,
                str(r.seed),
                f"{_accuracy(r):.2f}" + (f" ({chance})" if (chance := chance_text(d)) else ""),
                str(d.get("steps", "?")),
                f"{float(wall) / 60:.1f}" if isinstance(wall, int | float) else "n/a",
                _millions(d.get("train_tokens_per_s")),
                f"{float(peak) / 2**30:.2f}" if isinstance(peak, int | float) else "n/a",
                str(d.get("device", "?")),
                str(d.get("precision", "?")),
                _commit(r),
                str(d.get("finished_at", "?"))[:16],
                f"`{shown_path(r.path.parent)}`",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", prov])


def summary_block(runs: list[RunRecord]) -> str:
    """The README block: markers, introduction and table."""
    return "\n".join([README_START, "", SUMMARY_INTRO, "", *summary_rows(runs), "", README_END])


def replace_readme_block(text: str, block: str) -> str:
    """``text`` with the part from :data:`README_START` to :data:`README_END` replaced.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    return replace_marked_block(text, block, README_START, README_END)
