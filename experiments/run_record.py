"""``metrics.json``: one record per run directory (docs/interfaces.md §4).

The record is written at the start (``status: running``) and rewritten at the end
(``completed``, or ``failed`` with ``failure_reason``). Every write goes to a temporary file
in the same directory followed by ``os.replace``, so a reader (or a killed run) never sees a
half-written file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
FIELDS = (
    "schema_version",
    "status",
    "failure_reason",
    "task",
    "attention",
    "model",
    "transform",
    "variant",
    "seed",
    "seq_len",
    "mask",
    "num_params",
    "val_acc_best",
    "test_acc",
    "test_acc_best_val",
    "steps",
    "epochs",
    "train_tokens_per_s",
    "eval_tokens_per_s",
    "peak_memory_bytes",
    "peak_memory_kind",
    "wall_time_s",
    "precision",
    "device",
    "git_commit",
    "started_at",
    "finished_at",
    "command",
    "run_dir",
    "config",
)
"""Every key of a record, in the order of docs/interfaces.md §4."""


def now_iso() -> str:
    """Current UTC time, ISO-8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    """``git rev-parse HEAD`` of ``cwd`` (default: this repository), or ``unknown``.

    ``SPECTRANS_GIT_COMMIT`` wins when set (a copy of the tree without ``.git``, e.g. a
    remote GPU machine, names its commit that way).
    """
    if os.environ.get("SPECTRANS_GIT_COMMIT"):
        return os.environ["SPECTRANS_GIT_COMMIT"]
    where = cwd if cwd is not None else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    """The command that started this process, e.g. ``python train.py task=listops``."""
    return " ".join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "python"


def write_json_atomic(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".metrics.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunRecord:
    """The record of one run; ``update(**fields)`` then ``write()``.

    Args:
        run_dir: The run directory; the record is ``run_dir/metrics.json``.
        fields: Initial values (unknown keys are rejected).
    """

    def __init__(self, run_dir: str | os.PathLike[str], **fields: Any) -> None:
        self.path = Path(run_dir) / "metrics.json"
        self.data: dict[str, Any] = dict.fromkeys(FIELDS)
        self.data.update(
            schema_version=SCHEMA_VERSION,
            status="running",
            run_dir=str(run_dir),
            started_at=now_iso(),
            command=command_line(),
        )
        self.update(**fields)

    def update(self, **fields: Any) -> RunRecord:
        """Set fields; a key outside :data:`FIELDS` raises ``KeyError``."""
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise KeyError(f"unknown metrics.json field(s) {unknown}; allowed: {list(FIELDS)}")
        self.data.update(fields)
        return self

    def write(self) -> Path:
        """Write ``metrics.json`` atomically; returns its path."""
        write_json_atomic(self.path, self.data)
        return self.path

    def finish(self, status: str, reason: str | None = None, **fields: Any) -> Path:
        """Set the final status and write.

        ``completed``: the planned steps ran; ``incomplete``: stopped early (``max_time``) and
        resumable, ``reason`` says where; ``failed``: ``reason`` says why.
        """
        if status not in ("completed", "incomplete", "failed"):
            raise ValueError(
                f"status={status!r} is invalid; choose completed, incomplete or failed"
            )
        self.update(status=status, failure_reason=reason, finished_at=now_iso(), **fields)
        return self.write()
