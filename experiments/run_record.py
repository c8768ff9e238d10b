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

from experiments.portable import portable_command, portable_path

SCHEMA_VERSION = 1
FIELDS = (
    "schema_version",
    "status",
    "failure_reason",
    "protocol",
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
    "chance_acc",
    "head_live_units",
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


RECORD_MODE = 0o644
"""Records are readable by everyone (``mkstemp`` would leave them 0600)."""


def now_iso() -> str:
    """Current UTC time, ISO-8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_commit(cwd: str | os.PathLike[str] | None = None, *, short: bool = False) -> str:
    """``git rev-parse HEAD`` of ``cwd`` (default: this repository), or ``unknown``.

    ``+dirty`` is appended when tracked files have local changes. ``SPECTRANS_GIT_COMMIT``
    wins when set (a copy of the tree without ``.git``, e.g. a remote GPU machine, names its
    commit that way).

    Args:
        cwd: A folder inside the checkout.
        short: The abbreviated SHA (``git rev-parse --short``) instead of the full one.
    """
    if os.environ.get("SPECTRANS_GIT_COMMIT"):
        return os.environ["SPECTRANS_GIT_COMMIT"]
    where = cwd if cwd is not None else Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        sha = git("rev-parse", *(["--short"] if short else []), "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("+dirty" if sha and dirty else "")


def _status_on_disk(path: Path) -> str | None:
    """The ``status`` of the record at ``path`` (None: no readable record)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data.get("status") if isinstance(data, dict) else None


def command_line() -> str:
    """The command that started this process, e.g. ``python train.py task=listops``.

    Absolute paths in it are written relative to the repository (:mod:`experiments.portable`).
    """
    return portable_command(sys.argv) if sys.argv and sys.argv[0] else "python"


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
        os.chmod(tmp, RECORD_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


STATUSES = ("completed", "incomplete", "interrupted", "failed")
"""Final statuses (``running`` is the status while a run is in progress)."""


class RecordExistsError(FileExistsError):
    """A completed record is in the way; completed records are never rewritten."""


class RunRecord:
    """The record of one run, written by the run or read back (:meth:`from_data`).

    A completed ``metrics.json`` is never overwritten: creating a record in a run directory
    whose record is completed raises :class:`RecordExistsError`.

    Args:
        run_dir: The run directory; the record is ``run_dir/metrics.json``. The record's
            ``run_dir`` field names it relative to the repository (never absolute).
        fields: Initial values (unknown keys are rejected).

    Attributes:
        path: ``run_dir/metrics.json``.
        data: The fields.
        problem: Why a reader leaves the record out of its tables (None: usable).
    """

    problem: str | None = None

    def __init__(self, run_dir: str | os.PathLike[str], **fields: Any) -> None:
        self.path = Path(run_dir) / "metrics.json"
        if _status_on_disk(self.path) == "completed":
            raise RecordExistsError(
                f"{self.path} records a completed run and is never rewritten; start a new run "
                "(drop resume / paths.run_dir)"
            )
        self.data: dict[str, Any] = dict.fromkeys(FIELDS)
        self.data.update(
            schema_version=SCHEMA_VERSION,
            status="running",
            run_dir=portable_path(run_dir),
            started_at=now_iso(),
            command=command_line(),
        )
        self.update(**fields)

    @classmethod
    def from_data(
        cls, path: str | os.PathLike[str], data: dict[str, Any], problem: str | None = None
    ) -> RunRecord:
        """A record read from ``path`` (read-only use: nothing is checked or written)."""
        record = cls.__new__(cls)
        record.path, record.data, record.problem = Path(path), data, problem
        return record

    @property
    def task(self) -> str:
        """Task name, or '?' when missing."""
        return str(self.data.get("task", "?"))

    @property
    def variant(self) -> str:
        """Variant name; derived from ``attention``/``transform`` (or ``model=lst``) if absent."""
        if self.data.get("variant"):
            return str(self.data["variant"])
        base = self.data.get("attention") or self.data.get("model") or "?"
        transform = self.data.get("transform")
        return f"{base}-{transform}" if transform and base in ("lst",) else str(base)

    @property
    def seed(self) -> Any:
        """Seed (may be None)."""
        return self.data.get("seed")

    def update(self, **fields: Any) -> RunRecord:
        """Set fields; a key outside :data:`FIELDS` raises ``KeyError``."""
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise KeyError(f"unknown metrics.json field(s) {unknown}; allowed: {list(FIELDS)}")
        self.data.update(fields)
        return self

    def write(self) -> Path:
        """Write ``metrics.json`` atomically; returns its path.

        Raises:
            RecordExistsError: another run completed this record meanwhile.
        """
        on_disk = _status_on_disk(self.path)
        if on_disk == "completed" and self.data.get("status") != "completed":
            raise RecordExistsError(f"{self.path} records a completed run and is never rewritten")
        write_json_atomic(self.path, self.data)
        return self.path

    def finish(self, status: str, reason: str | None = None, **fields: Any) -> Path:
        """Set the final status and write.

        ``completed``: the planned steps ran; ``incomplete``: stopped early (``max_time``) and
        resumable, ``reason`` says where; ``interrupted``: stopped by Ctrl-C, resumable,
        ``reason`` gives the step and the command; ``failed``: ``reason`` says why.
        """
        if status not in STATUSES:
            raise ValueError(f"status={status!r} is invalid; choose one of {', '.join(STATUSES)}")
        self.update(status=status, failure_reason=reason, finished_at=now_iso(), **fields)
        return self.write()
