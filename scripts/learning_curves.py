"""Summarise training runs' CSV logs as one Markdown table of learning curves.

Usage::

    python scripts/learning_curves.py RUN_DIR [RUN_DIR ...] [--bin 1000] [--out FILE]

Each ``RUN_DIR`` holds ``csv/metrics.csv`` (Lightning's CSV logger) and ``metrics.json`` (the
run record). One row per run and bin of ``--bin`` training steps: the mean logged training loss
and accuracy over the bin, the highest validation accuracy evaluated in it and the classifier
head's live units at the bin's last validation (``val/head_live_units``; 0: the head passes no
gradient); then, per run, its record's status, steps, final test accuracy and command. A bin
with no logged value shows an empty cell.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of one ``metrics.csv``."""
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


LOGGED = ("train/loss", "train/acc", "val/acc", "val/head_live_units")
"""The CSV columns a bin summarises."""


def bins(rows: list[dict[str, str]], width: int) -> list[tuple[int, str, str, str, str]]:
    """``(first step, train loss, train acc, best val acc, live head units)`` per bin."""
    out: dict[int, dict[str, list[float]]] = {}
    for row in rows:
        start = int(row["step"]) // width * width
        cell = out.setdefault(start, {key: [] for key in LOGGED})
        for key, values in cell.items():
            if row.get(key):
                values.append(float(row[key]))

    def mean(values: list[float]) -> str:
        return f"{sum(values) / len(values):.4f}" if values else ""

    return [
        (
            start,
            mean(cell["train/loss"]),
            mean(cell["train/acc"]),
            f"{100 * max(cell['val/acc']):.2f}" if cell["val/acc"] else "",
            f"{cell['val/head_live_units'][-1]:.0f}" if cell["val/head_live_units"] else "",
        )
        for start, cell in sorted(out.items())
    ]


def run_table(run_dirs: list[Path], width: int) -> str:
    """The Markdown text: one curve table and one record table."""
    lines = [
        "| run | steps from | train loss (mean) | train acc (mean) | best val acc % "
        "| live head units |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    records = ["| run | status | steps | test acc % | command |", "|---|---|---:|---:|---|"]
    for run in run_dirs:
        for start, loss, acc, val, live in bins(read_rows(run / "csv" / "metrics.csv"), width):
            lines.append(f"| {run.name} | {start:,} | {loss} | {acc} | {val} | {live} |")
        record = json.loads((run / "metrics.json").read_text())
        test = record.get("test_acc")
        test_text = f"{100 * test:.2f}" if isinstance(test, float) and math.isfinite(test) else ""
        records.append(
            f"| {run.name} | {record.get('status')} | {record.get('steps', 0):,} | "
            f"{test_text} | `{record.get('command', '')}` |"
        )
    return "\n".join(lines + [""] + records) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print (or write to ``--out``) the table; exit 2 when a run folder lacks its files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--bin", type=int, default=1000, help="training steps per row")
    parser.add_argument("--out", type=Path, default=None, help="write here instead of stdout")
    args = parser.parse_args(argv)
    if args.bin < 1:
        print(f"--bin must be a positive number of steps, got {args.bin}.", file=sys.stderr)
        return 2
    missing = [
        str(r / name) for r in args.runs for name in ("csv/metrics.csv", "metrics.json")
        if not (r / name).is_file()
    ]  # fmt: skip
    if missing:
        print(f"not a run folder with its logs: {', '.join(missing)}", file=sys.stderr)
        return 2
    text = run_table(args.runs, args.bin)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
