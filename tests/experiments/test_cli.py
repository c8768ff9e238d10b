"""experiments.cli: Ctrl-C reaches a run even when its shell started it with SIGINT ignored."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = (
    "import pathlib, sys, time\n"
    "{restore}"
    "try:\n"
    "    print('ready', flush=True)\n"
    "    time.sleep(30)\n"
    "except KeyboardInterrupt:\n"
    "    pathlib.Path(sys.argv[1]).write_text('interrupted')\n"
)


def _interrupt(tmp_path: Path, restore: str) -> str | None:
    """Start the child with SIGINT ignored (as ``cmd &`` in a script does), then Ctrl-C it."""
    out = tmp_path / "out"
    code = CHILD.format(restore=restore)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(out)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return out.read_text() if out.exists() else None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_run_started_with_sigint_ignored_still_answers_ctrl_c(tmp_path: Path) -> None:
    restore = "from experiments.cli import answer_ctrl_c\nanswer_ctrl_c()\n"
    assert _interrupt(tmp_path, restore) == "interrupted"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_without_it_the_ctrl_c_is_lost(tmp_path: Path) -> None:
    assert _interrupt(tmp_path, "") is None


def test_train_py_restores_ctrl_c_before_anything_else() -> None:
    source = (Path(__file__).resolve().parents[2] / "train.py").read_text()
    main_block = source.split('if __name__ == "__main__":', 1)[1]
    assert main_block.lstrip().startswith("answer_ctrl_c()")
