"""Sweeps run the grid with one folder per job and survive a failing job; DDP on CPU (gloo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_bad_grid_value_is_refused_before_any_job(tmp_path: Path) -> None:
    out = _train(
        ["-m", "debug=default", "attention.num_heads=3,4", f"paths.output_dir={tmp_path}/runs"],
        tmp_path,
    )
    assert out.returncode == 2 and "divisible by num_heads (3)" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "runs").exists()


def test_sweep_records_a_failing_job_and_goes_on(tmp_path: Path) -> None:
    out = _train(
        [
            "-m",
            "debug=default",
            "attention=lst",
            "attention.transform_type=dst",
            "scheduler=constant",
            "optimizer.lr=1e30,0.001",
            f"paths.output_dir={tmp_path}/runs",
            f"paths.data_dir={tmp_path}/data",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    assert out.returncode == 1, out.stderr[-2000:]  # a job failed, so the sweep did
    assert "1 sweep job(s) failed" in out.stderr
    records = {
        p.parent.name.split("_")[0]: json.loads(p.read_text())
        for p in tmp_path.glob("runs/multirun/*/*/metrics.json")
    }
    assert sorted(records) == ["0", "1"]  # one folder per job
    assert records["0"]["status"] == "failed"  # the first job fails, the sweep goes on
    assert "train/loss became" in records["0"]["failure_reason"]
    assert (records["1"]["status"], records["1"]["variant"]) == ("completed", "lst-dst")


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    out = _train(
        [
            "debug=default",
            "trainer=ddp",
            "trainer.strategy=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
            f"paths.output_dir={tmp_path}/runs",
            f"paths.data_dir={tmp_path}/data",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (metrics,) = tmp_path.glob("runs/*/*/metrics.json")
    record = json.loads(metrics.read_text())
    assert record["status"] == "completed" and record["config"]["trainer"]["strategy"] == "ddp"
    assert (metrics.parent / "train_ddp_process_1.log").exists()  # the second rank ran here
