"""Files of the scaling benchmark: ``scaling.csv``, ``scaling.md`` and ``scaling.png``.

Each table is written to a sibling file and renamed over the old one, so a reader never sees
a half-written table. The markdown and the plot are drawn by :mod:`experiments.bench_report`.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from experiments.bench_report import Row, plot, write_markdown

CSV_COLUMNS = (
    "mixer",
    "scope",
    "dtype",
    "device",
    "N",
    "batch",
    "time_ms",
    "peak_mem_bytes",
    "status",
    "repeats",
    "message",
)
MODEL_DESCRIPTIONS = {
    "build_classifier": "spectrans.models.build_classifier (encoder, 2 layers, hidden as "
    "above, no dropout, mean pooling, 10 classes) on random token ids",
    "pre-norm stack": "two pre-norm blocks (LayerNorm, mixer, residual; LayerNorm, 4x GELU MLP, "
    "residual) and a final LayerNorm, built in experiments/bench_specs.py",
}


def model_description(rows: list[Row]) -> str:
    """What the model scope measured (from the rows' build notes)."""
    kinds = sorted(
        {
            r.message.split(";")[0]
            for r in rows
            if r.scope == "model" and r.message.split(";")[0] in MODEL_DESCRIPTIONS
        }
    )
    return "; ".join(MODEL_DESCRIPTIONS[k] for k in kinds) or "not measured"


def write_csv(rows: list[Row], path: Path) -> None:
    """Raw rows, one per (mixer, scope, dtype, N)."""
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in rows:
            d = asdict(r)
            d["time_ms"] = "" if r.time_ms is None else f"{r.time_ms:.3f}"
            d["peak_mem_bytes"] = "" if r.peak_mem_bytes is None else r.peak_mem_bytes
            writer.writerow({k: d[k] for k in CSV_COLUMNS})


def write_tables(rows: list[Row], out: Path, meta: dict[str, Any]) -> list[Path]:
    """Write ``scaling.csv`` and ``scaling.md`` into ``out``, each by renaming a full copy."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "scaling.csv", out / "scaling.md"]
    for path, write in zip(
        paths, (write_csv, lambda r, p: write_markdown(r, p, meta)), strict=True
    ):
        tmp = path.with_name(path.name + ".tmp")
        write(rows, tmp)
        os.replace(tmp, path)
    return paths


def write_kernels(rows: list[Row], path: Path, meta: dict[str, Any]) -> None:
    """``kernels.md``: the kernel table of every row that has one, after the provenance."""
    on_cpu = str(meta["device"]).startswith("cpu")
    where = "host time of the ATen operators" if on_cpu else "device time"
    lines = [
        "# Kernel tables of the scaling benchmark's steps",
        "",
        f"Command: `{meta['command']}`; commit `{meta['git_commit']}`, {meta['device']}, "
        f"torch {meta['torch']}, {meta['date']}. Each table: `torch.profiler` over three "
        f"forward+backward steps launched from Python after the timed ones ({where}; with "
        "`--timing graph` or `compiled` the same kernels the timed graph replays ran), batch "
        f"{meta['batch']}, hidden {meta['hidden']}.",
    ]
    for r in rows:
        if r.kernels:
            time = "" if r.time_ms is None else f": {r.time_ms:.3f} ms timed"
            lines += ["", f"## {r.mixer}, {r.scope}, {r.dtype}, N = {r.N}{time}", "", r.kernels]
    path.write_text("\n".join(lines) + "\n")


def write_outputs(rows: list[Row], out: Path, meta: dict[str, Any]) -> list[Path]:
    """Write ``scaling.csv``, ``scaling.md``, ``scaling.png`` (and ``kernels.md``) into ``out``.

    ``kernels.md`` only when some row has a kernel table (``--kernels``).
    """
    paths = [*write_tables(rows, out, meta), out / "scaling.png"]
    plot(rows, paths[2], f"{meta['device']}, batch {meta['batch']}, hidden {meta['hidden']}")
    if any(r.kernels for r in rows):
        paths.append(out / "kernels.md")
        write_kernels(rows, paths[-1], meta)
    return paths
