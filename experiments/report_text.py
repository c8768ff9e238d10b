"""Pieces of the small Markdown reports the diagnostic commands print and write."""

from __future__ import annotations

import datetime as dt
import shlex
import sys
from pathlib import Path

from experiments.portable import portable_argument


def command_line(module: str, argv: list[str]) -> str:
    """``python -m <module> <argv>`` with paths made portable and words shell-quoted."""
    return " ".join([f"python -m {module}", *(shlex.quote(portable_argument(a)) for a in argv)])


def utc_stamp() -> str:
    """The time now as ``YYYY-MM-DD HH:MM UTC``."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def emit(lines: list[str], out: Path | None) -> None:
    """Print the report (stdout) and, when ``out`` is given, write it there too."""
    text = "\n".join([*lines, ""])
    print(text, file=sys.stdout)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)


def replace_marked_block(text: str, block: str, start_marker: str, end_marker: str) -> str:
    """``text`` with the part from ``start_marker`` to ``end_marker`` (both included) replaced.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(
            f"the file has no {start_marker!r} ... {end_marker!r} block to replace; "
            "add the two marker lines where the table belongs"
        )
    return text[:start] + block + text[end + len(end_marker) :]
