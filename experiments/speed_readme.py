"""The README's speed table, written from a committed scaling benchmark run.

Usage::

    python -m experiments.speed_readme [--scaling results] [--readme README.md]

Reads ``<scaling>/scaling.csv`` (the layer rows of ``python -m experiments.bench``) and the
provenance list of ``<scaling>/scaling.md`` (command, commit, device, date), and replaces the
README's block between :data:`README_START` and :data:`README_END` with one row per mixer:
bfloat16 milliseconds at the run's lengths among 1K, 4K, 16K and 64K, float32 at the longest,
the bfloat16 peak memory at the longest, and the time relative to the softmax layer there.
A configuration that did not complete shows its status (``oom``, ``budget``, ...). Without
``--readme`` the block is printed.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

from experiments.portable import portable_path
from experiments.report_text import replace_marked_block

README_START = "<!-- speed-table:start (written by python -m experiments.speed_readme) -->"
README_END = "<!-- speed-table:end -->"
LENGTHS = (1024, 4096, 16384, 65536)
"""The lengths shown when the run measured them."""
BASELINE = "softmax"

_PROVENANCE = re.compile(r"^- (command|git commit|device|torch|date): (.+)$")


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    """The layer-scope rows of a ``scaling.csv``."""
    with csv_path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if row["scope"] == "layer"]


def read_provenance(md_path: Path) -> dict[str, str]:
    """``command``, ``git commit``, ``device``, ``torch`` and ``date`` from ``scaling.md``.

    Raises:
        ValueError: one of them is missing.
    """
    found: dict[str, str] = {}
    for line in md_path.read_text().splitlines():
        match = _PROVENANCE.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip().strip("`")
    missing = [k for k in ("command", "git commit", "device", "date") if k not in found]
    if missing:
        raise ValueError(f"{md_path} names no {', '.join(missing)} in its provenance list")
    return found


def _cell(rows: dict[tuple[str, str, int], dict[str, str]], key: tuple[str, str, int]) -> str:
    row = rows.get(key)
    if row is None:
        return "—"
    if row["status"] != "ok":
        return row["status"]
    return f"{float(row['time_ms']):.1f}"


def table_lines(rows: list[dict[str, str]]) -> list[str]:
    """One Markdown row per mixer, in the order the run measured them."""
    by_key = {(r["mixer"], r["dtype"], int(r["N"])): r for r in rows}
    measured = sorted({int(r["N"]) for r in rows})
    lengths = [n for n in LENGTHS if n in measured] or measured
    longest = lengths[-1]
    mixers = list(dict.fromkeys(r["mixer"] for r in rows))
    short = f"{longest // 1024}K" if longest % 1024 == 0 else str(longest)
    header = [
        "mixer",
        *(f"bf16 @{n // 1024}K" if n % 1024 == 0 else f"bf16 @{n}" for n in lengths),
        f"fp32 @{short}",
        f"bf16 peak MiB @{short}",
        f"bf16 × {BASELINE} @{short}",
    ]
    base = by_key.get((BASELINE, "bf16", longest))
    base_ms = float(base["time_ms"]) if base and base["status"] == "ok" else None
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for mixer in mixers:
        row = by_key.get((mixer, "bf16", longest))
        ok = row is not None and row["status"] == "ok"
        peak = f"{int(row['peak_mem_bytes']) / 2**20:.0f}" if ok and row["peak_mem_bytes"] else "—"
        ratio = f"{float(row['time_ms']) / base_ms:.2f}" if ok and base_ms else "—"
        cells = [
            mixer,
            *(_cell(by_key, (mixer, "bf16", n)) for n in lengths),
            _cell(by_key, (mixer, "fp32", longest)),
            peak,
            ratio,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def speed_block(scaling_dir: Path) -> str:
    """The README block: markers, provenance sentence and table."""
    prov = read_provenance(scaling_dir / "scaling.md")
    lines = table_lines(read_rows(scaling_dir / "scaling.csv"))
    commit = prov["git commit"][:7]
    torch_version = f", torch {prov['torch']}" if "torch" in prov else ""
    source = portable_path(scaling_dir / "scaling.md")
    sentence = (
        f"`{prov['command']}` on one {prov['device']}{torch_version}, {prov['date']}, commit "
        f"`{commit}` (`{source}`; this table is written from its "
        "`scaling.csv` by `python -m experiments.speed_readme --readme README.md`). Forward and "
        "backward of one layer, milliseconds; a configuration that did not complete shows why."
    )
    return "\n".join([README_START, "", sentence, "", *lines, "", README_END])


def main(argv: list[str] | None = None) -> int:
    """Write (or print) the README's speed block."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scaling", type=Path, default=Path("results"), help="folder of the run")
    p.add_argument("--readme", type=Path, default=None, help="rewrite this file's block")
    args = p.parse_args(argv)
    try:
        block = speed_block(args.scaling)
        if args.readme is None:
            print(block)
            return 0
        text = replace_marked_block(args.readme.read_text(), block, README_START, README_END)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.readme.write_text(text)
    print(f"wrote the speed block of {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
