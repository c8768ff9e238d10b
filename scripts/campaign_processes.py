"""Stopping a campaign's training processes: Ctrl-C with a grace, then SIGTERM and SIGKILL.

A run interrupted like a Ctrl-C saves ``last.ckpt`` at its current step and records itself
``interrupted`` (resumable); a process whose record is final but which lives on (compile
worker pools, CUDA-graph teardown) only holds its GPU share and is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

INTERRUPT_GRACE_S = 20.0
"""How long an interrupted run gets to save ``last.ckpt`` and its record."""
EXIT_GRACE_S = 60.0
"""A run whose record is final this long ago but whose process lives on is stopped."""


def interrupt_process(proc: subprocess.Popen, grace: float = INTERRUPT_GRACE_S) -> None:
    """Ctrl-C the run (SIGINT to its main process), then :func:`stop_process` after ``grace``.

    The harness answers Ctrl-C by saving ``last.ckpt`` at the current step and recording the
    run ``interrupted`` (resumable), so the steps since the last periodic checkpoint survive.
    Its data-loader workers get no signal: the main process shuts them down.
    """
    try:
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(grace)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        stop_process(proc)


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM the process group of ``proc``; SIGKILL it if it is still alive 10 s later."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def lingering(run_dir: Path, now: float | None = None) -> bool:
    """Whether the run's record is final (completed or failed) for over ``EXIT_GRACE_S``.

    Such a process has written everything; what keeps it alive (compile worker pools,
    CUDA-graph teardown) only holds its GPU share.
    """
    path = run_dir / "metrics.json"
    try:
        status = json.loads(path.read_text()).get("status")
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except (OSError, ValueError, AttributeError):
        return False
    return status in ("completed", "failed") and age > EXIT_GRACE_S
