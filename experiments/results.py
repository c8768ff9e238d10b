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
- ``pareto_<task>.png``: test accuracy against train throughput and against peak memory, one
  point per variant.
- ``lra_summary.md`` / ``lra_runs.md``: one row per task and variant with each seed's value,
  commit and throughput (the README's accuracy table), and one row per run
  (:mod:`experiments.results_summary`).

Averages over tasks are the plain means of the per-task means:
``avg5 = (1/5) sum_{t in T5} mean_t`` and ``avg6 = (avg5 * 5 + pathx) / 6`` with
``pathx = 50`` when no completed Path-X run exists. A variant missing any of the five tasks has
no average. Failed, running and malformed records are listed in their own section and never
enter a mean. Only protocol runs (``protocol: lra``, :mod:`experiments.protocol`) enter the
tables unless ``--protocols`` says otherwise; the others are listed with their kind.

The work is split by job: :mod:`experiments.results_load` reads and filters the records,
:mod:`experiments.results_aggregate` computes the cells and averages,
:mod:`experiments.results_render` writes the tables and :mod:`experiments.results_plot` the
plots; their public names are re-exported here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from experiments.portable import portable_argument
from experiments.protocol import PROTOCOLS
from experiments.results_aggregate import (
    FEATURE_MAPS,
    PATHX_FAIL_SCORE,
    REFERENCES,
    CellStats,
    accuracy_cells,
    accuracy_rows,
    efficiency_groups,
    failed_counts,
    pareto_points,
    task_averages,
)
from experiments.results_load import (
    DEFAULT_RUN_DIRS,
    REQUIRED_FIELDS,
    find_metric_files,
    load_record,
    record_protocol,
    split_records,
    table_label,
    tasks,
    tasks5,
)
from experiments.results_plot import pareto_plot
from experiments.results_render import (
    accuracy_markdown,
    efficiency_markdown,
    excluded_section,
    provenance,
    write_accuracy_csv,
)
from experiments.results_summary import (
    replace_readme_block,
    runs_markdown,
    summary_block,
    summary_markdown,
)
from experiments.run_record import RunRecord, git_commit

__all__ = [
    "DEFAULT_RUN_DIRS",
    "FEATURE_MAPS",
    "PATHX_FAIL_SCORE",
    "REFERENCES",
    "REQUIRED_FIELDS",
    "CellStats",
    "RunRecord",
    "accuracy_cells",
    "accuracy_markdown",
    "accuracy_rows",
    "aggregate",
    "efficiency_groups",
    "efficiency_markdown",
    "excluded_section",
    "failed_counts",
    "find_metric_files",
    "git_commit",
    "load_record",
    "main",
    "pareto_plot",
    "pareto_points",
    "provenance",
    "record_protocol",
    "split_records",
    "table_label",
    "task_averages",
    "tasks",
    "tasks5",
    "write_accuracy_csv",
]


def __getattr__(name: str) -> tuple[str, ...]:
    """``TASKS`` and ``TASKS5``, computed on first access (they import every data module)."""
    if name == "TASKS":
        return tasks()
    if name == "TASKS5":
        return tasks5()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def aggregate(
    run_dirs: list[Path], out_dir: Path, command: str, protocols: tuple[str, ...] = ("lra",)
) -> dict[str, Any]:
    """Read the records under ``run_dirs`` and write every table and plot into ``out_dir``.

    Only runs whose ``protocol`` is in ``protocols`` enter the tables (see
    :func:`split_records`); the others are listed as excluded with the reason.

    Returns:
        A summary: ``records``, ``usable``, ``excluded`` counts, ``rows``, written ``files``
        and ``readme_block``, the README's summary block (:func:`summary_block`).
    """
    records = [load_record(p) for p in find_metric_files(run_dirs)]
    usable, excluded = split_records(records, protocols)
    out_dir.mkdir(parents=True, exist_ok=True)
    prov = provenance(command, records, run_dirs)
    rows = accuracy_rows(accuracy_cells(usable), failed_counts(excluded))
    files = [out_dir / "lra_accuracy.md", out_dir / "lra_accuracy.csv", out_dir / "efficiency.md"]
    plots = [out_dir / f"pareto_{task}.png" for task in tasks()]
    drawn = [pareto_plot(task, usable, png) for task, png in zip(tasks(), plots)]
    for png, ok in zip(plots, drawn):
        if not ok:
            png.unlink(missing_ok=True)  # an earlier plot of runs that no longer enter the tables
    plots = [png for png, ok in zip(plots, drawn) if ok]
    plot_lines = (
        ["## Plots", ""]
        + [
            f"- `{png.name}`: test accuracy (%) against train throughput (tokens/s) and against "
            "peak memory (GiB), one point per variant (mean ± std over seeds), from the completed "
            "runs of this file"
            for png in plots
        ]
        + ([""] if plots else ["No plot: no completed run.", ""])
    )
    plots_and_prov = "\n".join(plot_lines) + "\n" + prov
    files[0].write_text(accuracy_markdown(rows, excluded, plots_and_prov))
    write_accuracy_csv(rows, files[1])
    files[2].write_text(efficiency_markdown(usable, excluded, plots_and_prov))
    files += [out_dir / "lra_summary.md", out_dir / "lra_runs.md"]
    block = summary_block(usable)
    files[3].write_text(summary_markdown(block, prov))
    files[4].write_text(runs_markdown(usable, prov))
    files += plots
    return {
        "records": len(records),
        "usable": len(usable),
        "readme_block": block,
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
        "--readme",
        default=None,
        help="also rewrite the LRA summary block of this file (e.g. README.md) from the runs",
    )
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
    readme = Path(args.readme) if args.readme else None
    readme_text = ""
    if readme is not None:
        try:
            readme_text = readme.read_text()
            replace_readme_block(readme_text, "")  # the markers exist: checked before any write
        except (OSError, ValueError) as err:
            print(f"error: --readme {args.readme}: {err}", file=sys.stderr)
            return 2
    argv_used = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m experiments.results", *map(portable_argument, argv_used)])
    run_dirs = [Path(d) for d in (args.runs or DEFAULT_RUN_DIRS)]
    summary = aggregate(run_dirs, Path(args.out), command, tuple(args.protocols))
    print(
        f"{summary['records']} records: {summary['usable']} averaged, "
        f"{summary['excluded']} excluded"
    )
    for path in summary["files"]:
        print(f"wrote {path}")
    if readme is not None:
        readme.write_text(replace_readme_block(readme_text, summary["readme_block"]))
        print(f"wrote the LRA summary block of {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
