"""Resume: step-aligned data order, finding the run, and identical results after a crash."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from experiments import train as harness
from experiments.portable import recorded_path
from experiments.resume import ResumeError, StepAlignedSampler, find_resume_dir
from tests.run_endings import CtrlCAt

ROOT = Path(__file__).resolve().parents[2]


def test_sampler_epochs_are_seeded_permutations_and_skip_trained_batches() -> None:
    done = [0]
    sampler = StepAlignedSampler(10, batch_size=3, seed=5, progress=lambda: (done[0], 0, 1))
    epoch0 = list(sampler)
    assert sorted(epoch0) == list(range(10))
    done[0] = 4  # 4 batches per epoch: the second epoch starts
    epoch1 = list(sampler)
    assert sorted(epoch1) == list(range(10)) and epoch1 != epoch0 and sampler.epoch == 1
    done[0] = 5  # one batch of epoch 1 trained: continue after it
    assert list(sampler) == epoch1[3:]
    again = StepAlignedSampler(10, batch_size=3, seed=5, progress=lambda: (0, 0, 1))
    assert list(again) == epoch0  # same seed, same order, any process


def test_sampler_shards_ranks_like_distributed_sampler() -> None:
    shards = [
        list(StepAlignedSampler(7, batch_size=2, seed=0, progress=lambda r=r: (0, r, 2)))
        for r in range(2)
    ]
    assert [len(s) for s in shards] == [4, 4]
    assert set(shards[0]) | set(shards[1]) == set(range(7))


def test_find_resume_dir(tmp_path: Path) -> None:
    old, new, other = (tmp_path / "exp" / n for n in ("a", "b", "c"))
    for i, run_dir in enumerate((old, new)):
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
        os.utime(run_dir / "checkpoints" / "last.ckpt", (1000 + i, 1000 + i))
        (run_dir / "metrics.json").write_text('{"status": "incomplete"}')
    other.mkdir()
    assert find_resume_dir("auto", tmp_path, "exp") == new
    assert find_resume_dir("auto", tmp_path, "exp", exclude=new) == old
    assert find_resume_dir("auto", tmp_path, "nothing") is None
    assert find_resume_dir(str(old), tmp_path, "exp") == old
    assert find_resume_dir(str(old / "checkpoints" / "last.ckpt"), tmp_path, "exp") == old
    with pytest.raises(ResumeError, match="has no checkpoints/last.ckpt"):
        find_resume_dir(str(other), tmp_path, "exp")


def _cfg(out: Path, data: Path, extra: tuple[str, ...] = ()):  # noqa: ANN202
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "debug=default",
                f"paths.output_dir={out}",
                f"paths.data_dir={data}",
                "trainer.max_steps=16",
                "trainer.val_check_interval=5",
                "data.batch_size=16",
                "callbacks.checkpoint_every_n_steps=3",
                "trainer.enable_progress_bar=false",
                "model.dropout=0.2",
                *extra,
            ],
        )


def _losses(run_dir: str) -> dict[int, float]:
    with open(Path(run_dir) / "csv" / "metrics.csv") as handle:
        return {
            int(r["step"]): float(r["train/loss"])
            for r in csv.DictReader(handle)
            if r.get("train/loss")
        }


def _weights(run_dir: str) -> dict[str, torch.Tensor]:
    ckpt = torch.load(Path(run_dir) / "checkpoints" / "last.ckpt", weights_only=False)
    return ckpt["state_dict"]


def test_crashed_run_resumes_to_identical_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    straight = harness.run(_cfg(tmp_path / "a", data))
    make_callbacks = harness._make_callbacks
    monkeypatch.setattr(
        harness, "_make_callbacks", lambda exp, d: {**make_callbacks(exp, d), "crash": CtrlCAt(8)}
    )
    with pytest.raises(harness.RunInterruptedError, match="interrupted at step 8"):
        harness.run(_cfg(tmp_path / "b", data))
    monkeypatch.setattr(harness, "_make_callbacks", make_callbacks)
    crashed_dir = next((tmp_path / "b").glob("*/*/metrics.json")).parent
    assert '"status": "interrupted"' in (crashed_dir / "metrics.json").read_text()
    resumed = harness.run(_cfg(tmp_path / "b", data, ("resume=auto",)))
    assert recorded_path(resumed["run_dir"], [tmp_path / "b"]) == crashed_dir  # in place
    assert resumed["status"] == "completed" and resumed["steps"] == straight["steps"] == 16
    assert resumed["val_acc_best"] == straight["val_acc_best"]
    assert resumed["test_acc"] == straight["test_acc"]
    straight_dir = recorded_path(straight["run_dir"], [tmp_path / "a"])
    a, b = _losses(straight_dir), _losses(crashed_dir)
    assert b[15] == a[15] and all(b[s] == a[s] for s in range(9, 16))  # 13 batches per epoch
    wa, wb = _weights(straight_dir), _weights(crashed_dir)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_sigkilled_process_resumes(tmp_path: Path) -> None:
    args = [
        sys.executable,
        str(ROOT / "train.py"),
        "debug=default",
        f"paths.output_dir={tmp_path}/runs",
        f"paths.data_dir={tmp_path}/data",
        "callbacks.checkpoint_every_n_steps=2",
        "trainer.val_check_interval=50",
        "trainer.enable_progress_bar=false",
    ]
    proc = subprocess.Popen(
        [*args, "trainer.max_steps=30"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list(tmp_path.glob("runs/*/*/checkpoints/last.ckpt")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: killed mid-run
    proc.wait()
    run_dir = next(tmp_path.glob("runs/*/*/checkpoints/last.ckpt")).parent.parent
    assert '"status": "running"' in (run_dir / "metrics.json").read_text()
    killed_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert 0 < killed_at["global_step"] < 30
    out = subprocess.run(
        [*args, "trainer.max_steps=30", "resume=auto"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"Resuming {run_dir}" in out.stderr
    record = (run_dir / "metrics.json").read_text()
    assert '"status": "completed"' in record and '"steps": 30' in record


def test_a_best_checkpoint_saved_on_another_machine_is_found_in_the_run_folder(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "runs" / "exp" / "r1"
    (run_dir / "checkpoints").mkdir(parents=True)
    elsewhere = "/machine-a/repo/runs/exp/r1/checkpoints/best-step40.ckpt"
    assert harness.local_best(elsewhere, run_dir) == elsewhere  # not here either: unchanged
    (run_dir / "checkpoints" / "best-step40.ckpt").write_bytes(b"")
    assert harness.local_best(elsewhere, run_dir) == str(run_dir / "checkpoints/best-step40.ckpt")
    here = run_dir / "checkpoints" / "best-step40.ckpt"
    assert harness.local_best(str(here), tmp_path / "other") == str(here)  # exists: kept
    assert harness.local_best("", run_dir) == ""  # no best checkpoint
