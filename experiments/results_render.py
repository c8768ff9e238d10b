"""Render the aggregated rows as ``lra_accuracy.csv``, ``lra_accuracy.md`` and ``efficiency.md``."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

from experiments.results_aggregate import efficiency_groups, fmt_percent, mean_of
from experiments.results_load import campaign_sharing, shown_path, tasks
from experiments.run_record import RunRecord, git_commit


def write_accuracy_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """Machine-readable accuracy table (percent; empty cells for missing values)."""
    columns = ["kind", "variant", "source"]
    for task in tasks():
        columns += [f"{task}_{c}" for c in ("mean", "std", "n", "at_chance", "failed")]
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
            f"- run folders scanned: {', '.join(f'`{shown_path(d)}`' for d in run_dirs)}"
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
            f"| `{shown_path(rec.path)}` |"
        )
    return "\n".join(lines + [""])


def accuracy_markdown(rows: list[dict[str, Any]], excluded: list[RunRecord], prov: str) -> str:
    """``lra_accuracy.md``: our rows, then the references, then the excluded runs."""
    header = "| | variant | " + " | ".join(tasks()) + " | avg (5) | avg (6) | source |"
    sep = "|---" * (len(tasks()) + 5) + "|"
    lines = [
        "# LRA test accuracy (%)",
        "",
        "Cells: test accuracy of the final model (the LRA protocol), mean ± sample std over "
        "seeds (n = number of seeds); a single seed has no std; *k at chance*: k of those seeds "
        "tested within 1 point of the best answer that ignores the input (always the training "
        "split's most frequent label, `chance_acc` in `metrics.json`; on two-class tasks also "
        "the other label, 1 - `chance_acc`), i.e. learned nothing (kept and counted).",
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
        cells = " | ".join(row[f"{t}_text"] for t in tasks())
        lines.append(
            f"| {mark} | {row['variant']} | {cells} | {fmt_percent(row['avg5'])} | "
            f"{fmt_percent(row['avg6'])} | {row['source']} |"
        )
    return "\n".join(lines + ["", excluded_section(excluded), prov])


def _human_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def efficiency_markdown(runs: list[RunRecord], excluded: list[RunRecord], prov: str) -> str:
    """``efficiency.md``: params, tokens/s and peak memory per task and variant."""
    lines = [
        "# Efficiency per task and variant (completed runs)",
        "",
        "Means over seeds of the values recorded by each run; peak memory is the maximum over "
        "seeds and its kind says what was measured (`cuda_max_allocated` = "
        "torch.cuda.max_memory_allocated, `cpu_max_rss` = peak resident set size of the process).",
        "",
        "A run's tokens per second depend on what shared its GPU: `scripts/campaign.py` runs "
        "several per GPU where that raises the summed throughput. `runs per GPU` gives, for the "
        "runs' segments, the most runs the campaign had on the GPU at once (from each run's "
        "`campaign.json`; the planned sharing for segments recorded before that count; `—` for "
        "runs it did not start; runs started beside it by other commands are not counted), so "
        "rows with different sharing do not compare mixers. Each mixer's training "
        "step alone, next to a plain-PyTorch anchor: `results/train_step.md`.",
        "",
        "| task | variant | n | params | train tokens/s | eval tokens/s | runs per GPU "
        "| peak memory | memory kind | precision | device |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = efficiency_groups(runs)
    order = {t: i for i, t in enumerate(tasks())}
    for (task, variant), group in sorted(
        groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])
    ):
        params = mean_of(group, "num_params")
        train_tps = mean_of(group, "train_tokens_per_s")
        eval_tps = mean_of(group, "eval_tokens_per_s")
        mems = [
            float(r.data["peak_memory_bytes"])
            for r in group
            if isinstance(r.data.get("peak_memory_bytes"), int | float)
        ]
        kinds = sorted({str(r.data.get("peak_memory_kind", "?")) for r in group})
        precisions = sorted({str(r.data.get("precision", "?")) for r in group})
        devices = sorted({str(r.data.get("device", "?")) for r in group})
        shares = sorted({k for r in group for k in campaign_sharing(r)})
        lines.append(
            f"| {task} | {variant} | {len(group)} | "
            f"{'—' if params is None else f'{params:,.0f}'} | "
            f"{'—' if train_tps is None else f'{train_tps:,.0f}'} | "
            f"{'—' if eval_tps is None else f'{eval_tps:,.0f}'} | "
            f"{', '.join(map(str, shares)) or '—'} | "
            f"{_human_bytes(max(mems) if mems else None)} | {', '.join(kinds)} | "
            f"{', '.join(precisions)} | {', '.join(devices)} |"
        )
    return "\n".join(lines + ["", excluded_section(excluded), prov])
