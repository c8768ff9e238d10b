"""experiments.report_text: the command line, time stamp and output of the small reports."""

from __future__ import annotations

import re
from pathlib import Path

from experiments import report_text


def test_command_line_quotes_words_and_makes_paths_portable() -> None:
    line = report_text.command_line("experiments.x", ["--arm", "", "--arm", "a=1 b=2", "y"])
    assert line == "python -m experiments.x --arm '' --arm 'a=1 b=2' y"


def test_utc_stamp_format() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", report_text.utc_stamp())


def test_emit_prints_and_writes_the_same_text(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "sub" / "r.md"
    report_text.emit(["# T", "", "| a |"], out)
    assert capsys.readouterr().out == out.read_text() + "\n"
    assert out.read_text() == "# T\n\n| a |\n"
