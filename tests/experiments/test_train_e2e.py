"""The debug preset end to end: every task on tiny data, every attention on every task.

ListOps and Pathfinder are generated; text, retrieval and image read tiny files written here in
the official layouts (aclImdb folders, AAN tsv, CIFAR-10 python pickles).
"""

from __future__ import annotations

import json
import pickle
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from experiments import train as harness
from experiments.config import validate_experiment
from experiments.module import LRAModule
from experiments.portable import recorded_path
from experiments.run_record import FIELDS
from spectrans import registry

CONF = Path(__file__).resolve().parents[2] / "conf"
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def write_imdb(root: Path, per_class: int = 6) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for sub, word in (("neg", "bad"), ("pos", "good")):
            folder = root / "aclImdb" / split / sub
            folder.mkdir(parents=True)
            for i in range(per_class):
                words = " ".join(rng.choice([word, "movie", "the"], size=12))
                (folder / f"{i}_{i % 10}.txt").write_text(f"A {words} film.")


def write_aan(root: Path, rows: int = 12) -> None:
    root.mkdir(parents=True)
    for split in ("train", "eval", "test"):
        lines = [
            f"{float(i % 2)}\tid{i}a\tid{i}b\tpaper {i} about x\tpaper {i} about y"
            for i in range(rows)
        ]
        (root / f"new_aan_pairs.{split}.tsv").write_text("\n".join(lines) + "\n")


def write_cifar(root: Path, per_batch: int = 10) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": [int(x) for x in rng.integers(0, 10, per_batch)],
        }
        (root / name).write_bytes(pickle.dumps(batch))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lra")
    write_imdb(root / "imdb")
    write_aan(root / "tsv_data")
    write_cifar(root / "cifar-10-batches-py")
    return root


def absolute_paths(value: object) -> list[str]:
    """Every string in a JSON tree that names an absolute path (alone or as ``key=/...``)."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in absolute_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in absolute_paths(v)]
    if isinstance(value, str):
        return [w for w in value.split() if w.startswith("/") or "=/" in w]
    return []


def _cfg(tmp: Path, data_dir: Path, overrides: list[str]):  # noqa: ANN202
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "debug=default",
                f"paths.output_dir={tmp}/runs",
                f"paths.data_dir={data_dir}",
                *QUIET,
                *overrides,
            ],
        )


@pytest.mark.parametrize(
    ("task", "attention"),
    [
        ("listops", "softmax"),
        ("text", "fnet"),
        ("retrieval", "performer"),
        ("image", "hadamard"),
        ("pathfinder", "lst"),
    ],
)
def test_debug_preset_runs_end_to_end(
    task: str, attention: str, tmp_path: Path, data_dir: Path
) -> None:
    record = harness.run(_cfg(tmp_path, data_dir, [f"task={task}", f"attention={attention}"]))
    run_dir = recorded_path(record["run_dir"], [tmp_path / "runs"])
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert list(on_disk) == list(FIELDS)
    assert on_disk["status"] == "completed" and on_disk["failure_reason"] is None
    allowed_none = {"failure_reason", "transform"} if attention != "lst" else {"failure_reason"}
    assert [k for k, v in on_disk.items() if v is None and k not in allowed_none] == []
    assert (on_disk["task"], on_disk["attention"], on_disk["steps"]) == (task, attention, 4)
    assert 0.0 <= on_disk["val_acc_best"] <= 1.0 and 0.0 <= on_disk["test_acc"] <= 1.0
    assert on_disk["peak_memory_kind"] == "cpu_max_rss" and on_disk["num_params"] > 0
    assert on_disk["config"]["task"]["name"] == task
    assert absolute_paths(on_disk) == []  # the record names no folder of this machine
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("best-*.ckpt"))) == 1
    assert (run_dir / "csv" / "metrics.csv").is_file()
    header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "train/acc", "val/acc", "val/acc_best", "test/acc"} <= set(header)
    assert "val/head_live_units" in header
    width = on_disk["config"]["model"]["head_hidden_dim"]
    assert isinstance(on_disk["head_live_units"], int) and 0 <= on_disk["head_live_units"] <= width


@pytest.mark.parametrize("task", ["listops", "text", "retrieval", "image", "pathfinder"])
def test_every_attention_builds_and_trains_one_step(
    task: str, tmp_path: Path, data_dir: Path
) -> None:
    from omegaconf import OmegaConf

    batch = None
    for name in registry.names():
        raw = OmegaConf.to_container(
            _cfg(tmp_path, data_dir, [f"task={task}", f"attention={name}"]), resolve=True
        )
        exp = validate_experiment(raw)
        if batch is None:
            datamodule = harness.build_datamodule(exp)
            datamodule.prepare_data()
            datamodule.setup("fit")
            batch = {k: v[:1] for k, v in next(iter(datamodule.train_dataloader())).items()}
        module = LRAModule(
            harness.build_model(exp, datamodule),
            num_classes=datamodule.num_classes,
            is_pair=datamodule.is_pair,
            optimizer=exp.optimizer,
            scheduler=exp.scheduler,
            max_steps=4,
        )
        loss, _ = module._step(batch)
        loss.backward()
        assert torch.isfinite(loss), name
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), name


def test_non_finite_loss_marks_the_run_failed(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nan_step(self, batch):  # noqa: ANN001, ANN202
        logits = self(batch)  # (B, C)
        return logits.sum() * float("nan"), logits.argmax(-1)

    monkeypatch.setattr(LRAModule, "_step", nan_step)
    record = harness.run(_cfg(tmp_path, data_dir, []))
    assert record["status"] == "failed"
    assert record["failure_reason"].startswith("train/loss became nan at step")
    assert record["steps"] <= 1 and record["test_acc"] is None


def test_test_acc_is_the_final_model_and_best_val_checkpoint_is_second(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lightning.pytorch as pl
    from omegaconf import OmegaConf

    tested: list[tuple[int, str | None]] = []
    real_test = harness._test

    def spy(trainer, module, datamodule, ckpt):  # noqa: ANN001, ANN202
        tested.append((trainer.global_step, ckpt))
        return real_test(trainer, module, datamodule, ckpt)

    monkeypatch.setattr(harness, "_test", spy)
    cfg = _cfg(tmp_path, data_dir, ["task=listops", "attention=softmax", "trainer.max_steps=6"])
    record = harness.run(cfg)
    assert [ckpt is None for _, ckpt in tested] == [True, False]  # final weights first
    assert tested[0][0] == 6 and "best-" in str(tested[1][1])
    run_dir = recorded_path(record["run_dir"], [tmp_path / "runs"])
    assert record["mask"] == "lengths"
    exp = validate_experiment(OmegaConf.to_container(cfg, resolve=True))
    datamodule = harness.build_datamodule(exp)

    def accuracy_of(ckpt: Path) -> float:
        module = LRAModule(
            harness.build_model(exp, datamodule),
            num_classes=datamodule.num_classes,
            is_pair=datamodule.is_pair,
            optimizer=exp.optimizer,
            scheduler=exp.scheduler,
            max_steps=6,
        )
        trainer = pl.Trainer(
            accelerator="cpu",
            limit_test_batches=exp.trainer.limit_test_batches,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        results = trainer.test(module, datamodule=datamodule, ckpt_path=str(ckpt), verbose=False)
        return float(results[0]["test/acc"])

    best = next((run_dir / "checkpoints").glob("best-*.ckpt"))
    assert record["test_acc"] == pytest.approx(accuracy_of(run_dir / "checkpoints" / "last.ckpt"))
    assert record["test_acc_best_val"] == pytest.approx(accuracy_of(best))


def test_hybrid_model_runs_end_to_end(tmp_path: Path, data_dir: Path) -> None:
    overrides = ["task=text", "attention=s4d", "model=hybrid", "model.num_layers=2"]
    record = harness.run(_cfg(tmp_path, data_dir, overrides))
    run_dir = recorded_path(record["run_dir"], [tmp_path / "runs"])
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["status"] == "completed"
    assert on_disk["config"]["model"]["name"] == "hybrid"
    assert on_disk["variant"] == "hybrid-s4d"


def test_the_host_profiler_writes_its_report_and_leaves_the_run_a_protocol_run(
    tmp_path: Path, data_dir: Path
) -> None:
    plain = harness.run(_cfg(tmp_path / "a", data_dir, ["task=listops", "seed=3"]))
    record = harness.run(
        _cfg(tmp_path / "b", data_dir, ["task=listops", "seed=3", "trainer.profiler=simple"])
    )
    run_dir = recorded_path(record["run_dir"], [tmp_path / "b" / "runs"])
    report = (run_dir / "fit-profile.txt").read_text()
    assert "run_training_batch" in report and "optimizer_step" in report
    assert record["protocol"] == plain["protocol"]
    assert record["test_acc"] == plain["test_acc"]  # same seed, same training


def test_resume_hint_is_runnable_here_and_portable_in_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printed hint repeats the arguments as typed (data outside the repository stays
    where it is); the recorded one names no folder of this machine."""
    monkeypatch.chdir(tmp_path)
    typed = ["train.py", "paths.data_dir=/data/lra", "+task.generate={size: tiny}", "resume=auto"]
    monkeypatch.setattr(sys, "argv", typed)
    run_dir = tmp_path / "runs" / "x" / "r1"
    runnable = harness.resume_command(run_dir, runnable=True)
    assert runnable == (
        "python train.py paths.data_dir=/data/lra '+task.generate={size: tiny}' resume=runs/x/r1"
    )
    recorded = harness.resume_command(run_dir)
    assert "/data/lra" not in recorded and str(tmp_path) not in recorded
    reason = f"stopped at step 3 of 10 (trainer.max_time); continue with: {recorded}"
    assert harness._runnable(reason, run_dir) == (
        f"stopped at step 3 of 10 (trainer.max_time); continue with: {runnable}"
    )
    assert harness._runnable("NaN loss", run_dir) == "NaN loss"


def test_batches_read_no_logged_value_from_the_device(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning turns every progress-bar value it holds into a number after every batch (a
    device read and wait on a GPU); the per-step training metrics are therefore not progress-bar
    values, and the bar shows them from the logging steps. Validation and test batches add to
    running sums without reading them (no NaN or label checks). (The loggers' reads on logging
    steps and at the end of an evaluation are allowed.)"""
    reads: list[str] = []
    for name in ("item", "__float__", "tolist"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            stack = "".join(traceback.format_stack(limit=12))
            per_batch = "logger_connector" in stack and "in on_batch_end" in stack
            if per_batch or "in validation_step" in stack or "in test_step" in stack:
                reads.append(stack)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    overrides = [
        "task=listops", "trainer.max_steps=8", "trainer.log_every_n_steps=4",
        "trainer.val_check_interval=4", "trainer.enable_progress_bar=true",
    ]  # fmt: skip
    record = harness.run(_cfg(tmp_path, data_dir, overrides))
    assert record["status"] == "completed" and record["steps"] == 8
    assert reads == [], reads[0]
