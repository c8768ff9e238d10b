"""metrics.json: every field of docs/interfaces.md §4, atomic writes, status transitions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.run_record import FIELDS, RunRecord, git_commit, write_json_atomic

INTERFACE_FIELDS = [
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
]


def test_fields_match_the_interface() -> None:
    assert list(FIELDS) == INTERFACE_FIELDS


def test_running_then_failed_with_reason(tmp_path: Path) -> None:
    record = RunRecord(tmp_path, task="listops", seed=3)
    record.write()
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert (data["status"], data["task"], data["seed"]) == ("running", "listops", 3)
    assert list(data) == INTERFACE_FIELDS
    record.finish("failed", "ValueError: boom")
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert (data["status"], data["failure_reason"]) == ("failed", "ValueError: boom")
    assert data["finished_at"] is not None
    assert not list(tmp_path.glob(".metrics.*"))  # no temporary file left behind


def test_unknown_field_and_bad_status_are_refused(tmp_path: Path) -> None:
    record = RunRecord(tmp_path)
    with pytest.raises(KeyError, match="val_acc"):
        record.update(val_acc=0.5)
    with pytest.raises(ValueError, match="completed, incomplete, interrupted, failed"):
        record.finish("done")


def test_atomic_write_keeps_the_old_file_when_serialisation_fails(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan"), "b": object.__new__(_Circular)})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


class _Circular:
    def __str__(self) -> str:
        raise ValueError("cannot serialise")


def test_git_commit_falls_back_to_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"
    commit = git_commit()
    assert commit == "unknown" or len(commit.removesuffix("+dirty")) == 40
    assert len(git_commit(short=True).removesuffix("+dirty")) < 40


def test_a_run_stopped_early_is_recorded_incomplete_with_where_to_resume(tmp_path: Path) -> None:
    record = RunRecord(tmp_path)
    record.finish("incomplete", "stopped at step 3 of 10 (trainer.max_time); resume=x")
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["status"] == "incomplete"
    assert "resume=" in data["failure_reason"]
