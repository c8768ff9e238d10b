"""scripts/campaign_processes.py: interrupting, stopping and spotting lingering run processes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import campaign_processes  # noqa: E402


def test_a_final_record_with_a_live_process_is_lingering(tmp_path: Path) -> None:
    import os

    assert not campaign_processes.lingering(tmp_path)  # no record
    record = tmp_path / "metrics.json"
    record.write_text(json.dumps({"status": "running"}))
    old = time.time() - 2 * campaign_processes.EXIT_GRACE_S
    os.utime(record, (old, old))
    assert not campaign_processes.lingering(tmp_path)
    record.write_text(json.dumps({"status": "completed"}))
    assert not campaign_processes.lingering(tmp_path)  # just written: within the grace
    os.utime(record, (old, old))
    assert campaign_processes.lingering(tmp_path)


def test_a_run_stopped_at_the_deadline_is_interrupted_first(tmp_path: Path) -> None:
    """The deadline stop is a Ctrl-C: the run's KeyboardInterrupt handler gets to save."""
    import subprocess

    saved = tmp_path / "saved"
    child = (
        "import pathlib, sys, time\n"
        "from experiments.cli import answer_ctrl_c\n"
        "answer_ctrl_c()  # as train.py does: the test may run with SIGINT ignored\n"
        "try:\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        f"    pathlib.Path({str(saved)!r}).write_text('last.ckpt')\n"
        "    sys.exit(1)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    begin = time.monotonic()
    campaign_processes.interrupt_process(proc, grace=20.0)
    assert proc.returncode == 1 and saved.read_text() == "last.ckpt"
    assert time.monotonic() - begin < 10  # it exited on the interrupt, not on the grace


def test_an_interrupt_that_is_ignored_ends_in_termination(tmp_path: Path) -> None:
    import subprocess

    child = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    campaign_processes.interrupt_process(proc, grace=0.5)
    assert proc.returncode is not None and proc.returncode < 0  # terminated by a signal
