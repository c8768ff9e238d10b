"""Files of the step benchmark: ``train_step.csv`` and ``train_step.md``.

Both are written to a sibling file and renamed over the old one, so a reader never sees a
half-written table.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CSV_COLUMNS = (  # ``path`` names the mixing path (see mixing_path)
    "task",
    "mixer",
    "ms_per_step",
    "tokens_per_s",
    "peak_mem_bytes",
    "anchor_eager_ms",
    "anchor_compiled_ms",
    "compile",
    "device",
    "dtype",
    "commit",
    "date",
    "path",
    "status",
    "note",
)
NOT_RUN = "not run: time budget"


@dataclass
class StepRow:
    """One timed configuration (a row of ``train_step.csv``)."""

    task: str
    mixer: str
    ms_per_step: float | None
    tokens_per_s: float | None
    peak_mem_bytes: int | None
    anchor_eager_ms: float | None
    anchor_compiled_ms: float | None
    compile: str
    device: str
    dtype: str
    commit: str
    date: str
    batch: int = 0
    seq_len: int = 0
    status: str = "ok"
    path: str = ""
    note: str = ""


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _row_line(row: StepRow) -> str:
    ms = f"{row.ms_per_step:.2f} ms" if row.ms_per_step is not None else row.status
    return (
        f"{row.task:10s} {row.mixer:14s} {ms:>12s} ({row.note or row.compile}) "
        f"anchor {row.anchor_eager_ms} / {row.anchor_compiled_ms} ms"
    )


def _replace_text(path: Path, text: str) -> None:
    """Write ``text`` to a sibling file, then rename it over ``path`` (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_csv(rows: list[StepRow], path: Path) -> None:
    """``train_step.csv`` with :data:`CSV_COLUMNS`."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in asdict(row).items()})
    _replace_text(path, buffer.getvalue())


def _gib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**30:.2f}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def write_markdown(
    rows: list[StepRow],
    path: Path,
    command: str,
    meta: dict[str, str],
    planned: int | None = None,
    budget_s: float | None = None,
) -> None:
    """``train_step.md``: one table per task, ms/step next to the anchor.

    Args:
        rows: The rows finished so far (measured, failed or not run).
        path: Where to write.
        command: The command line, named in the header.
        meta: ``device``, ``dtype``, ``commit``, ``date``.
        planned: Rows the run plans; fewer ``rows`` means the run is going on or stopped.
        budget_s: The ``--time-budget``, if any.
    """
    lines = [
        "# Training step per mixer (LRA configs)",
        "",
        f"Command: `{command}`; device {meta['device']}, {meta['dtype']}, "
        f"commit {meta['commit']}, {meta['date']}.",
        "",
        "One step = forward on random tokens of the task's shape, cross-entropy, backward, "
        "optimizer step; mean over the timed steps after warm-up (compile time excluded). "
        "Anchor: a plain-PyTorch pre-norm SDPA encoder of the same shape. Mode: the modes "
        "timed and their ms/step (the faster one is reported).",
        "",
    ]
    if budget_s is not None:
        lines += [f"Time budget {budget_s:g} s: rows not begun within it say `{NOT_RUN}`.", ""]
    if planned is not None and len(rows) < planned:
        lines += [
            f"Partial: {len(rows)} of {planned} planned rows (the run is going on or stopped).",
            "",
        ]
    for task in dict.fromkeys(r.task for r in rows):
        lines += _task_table(task, [r for r in rows if r.task == task])
    _replace_text(path, "\n".join(lines))


def _task_table(task: str, sub: list[StepRow]) -> list[str]:
    """Markdown lines of one task: a heading with the shape and anchor, then a row per mixer."""
    head = next((r for r in sub if r.batch), None)
    shape = (
        f"batch {head.batch}, N = {head.seq_len}; anchor {head.anchor_eager_ms} ms eager, "
        f"{head.anchor_compiled_ms} ms compiled"
        if head
        else NOT_RUN
    )
    lines = [
        f"## {task} ({shape})",
        "",
        "| mixer | ms/step | tokens/s | peak GiB | vs anchor (compiled) | mode | path |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in sub:
        mode = _cell(r.note or r.compile)
        if r.ms_per_step is None:
            lines.append(f"| {r.mixer} | {_cell(r.status)} | | | | {mode} | {r.path} |")
            continue
        ratio = f"{r.ms_per_step / r.anchor_compiled_ms:.2f}x" if r.anchor_compiled_ms else "n/a"
        lines.append(
            f"| {r.mixer} | {r.ms_per_step:.2f} | {r.tokens_per_s:,.0f} | "
            f"{_gib(r.peak_mem_bytes)} | {ratio} | {mode} | {r.path} |"
        )
    lines.append("")
    return lines
