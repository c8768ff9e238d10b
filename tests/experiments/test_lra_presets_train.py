"""Every LRA preset starts and trains a few steps on tiny data on CPU.

Only sizes are overridden (model width, data, batch, steps); the preset's evaluation settings
(``val_check_interval``, ``check_val_every_n_epoch: null``) stay, so a preset whose evaluation
interval is longer than the tiny epoch must still start (Lightning refuses that unless
``check_val_every_n_epoch`` reaches the Trainer as None). By default every task runs with
``softmax`` (Path-X with ``lra-performer``: exact attention over 16384 tokens takes minutes on
CPU) and every variant runs on Pathfinder; the full grid is marked slow.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from experiments import train as harness
from experiments.portable import recorded_path
from spectrans.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def _module(path: Path, name: str):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


presets = _module(ROOT / "scripts/make_presets.py", "make_presets")
e2e = _module(Path(__file__).with_name("test_train_e2e.py"), "train_e2e_helpers")

TINY_TASK = {
    "listops": [
        "task.path=generated/listops-tiny",
        "task.max_length=128",
        "task.generate.size=tiny",
        "task.generate.workers=1",
    ],
    "text": ["task.max_length=32"],
    "retrieval": ["task.max_length=32", "task.raw_cut_bytes=64"],
    "image": [],
    "pathfinder": [
        "task.path=generated/pathfinder32-tiny/curv_contour_length_14",
        "+task.generate={size: tiny, num_images: 40}",
    ],
    "pathx": [
        "task.path=generated/pathfinder128-tiny/curv_contour_length_14",
        "+task.generate={size: tiny, num_images: 10}",
        "data.batch_size=1",
    ],
}
DEFAULT = sorted(
    {("softmax", t) for t in presets.LRA if t != "pathx"}
    | {("lra-performer", "pathx")}
    | {(v, "pathfinder") for v in presets.VARIANTS}
)
FULL = [(v, t) for v in presets.VARIANTS for t in presets.LRA if (v, t) not in DEFAULT]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lra_presets")
    e2e.write_imdb(root / "imdb")
    e2e.write_aan(root / "tsv_data")
    e2e.write_cifar(root / "cifar-10-batches-py")
    return root


def _overrides(variant: str, task: str, tmp: Path, data_dir: Path) -> list[str]:
    group = presets.VARIANTS[variant][0]
    heads = (
        ["attention.num_heads=2", "attention.head_dim=4"]
        if "num_heads" in REGISTRY[group].config_class.model_fields
        else []
    )
    return [
        f"experiment=lra/{variant}-{task}",
        f"paths.output_dir={tmp}/runs",
        f"paths.data_dir={data_dir}",
        "logger=csv",
        "trainer=cpu",
        "trainer.max_steps=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "callbacks.rich_progress=false",
        "callbacks.throughput=false",
        "data.batch_size=2",
        "model.hidden_dim=8",
        "model.num_layers=1",
        "model.ffn_hidden_dim=8",
        "model.head_hidden_dim=8",
        *heads,
        *TINY_TASK[task],
    ]


def _run(variant: str, task: str, tmp: Path, data_dir: Path) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=_overrides(variant, task, tmp, data_dir))
    assert cfg.trainer.check_val_every_n_epoch is None  # the preset's, not overridden
    assert cfg.trainer.val_check_interval == presets.LRA[task]["eval_every"]
    record = harness.run(cfg)
    run_dir = recorded_path(record["run_dir"], [tmp / "runs"])
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk["status"] == "completed", on_disk["failure_reason"]
    assert (on_disk["steps"], on_disk["variant"], on_disk["task"]) == (2, variant, task)
    assert 0.0 <= on_disk["test_acc"] <= 1.0 and on_disk["mask"] == presets.VARIANT_MASK.get(
        variant, presets.LRA[task]["mask"]
    )


@pytest.mark.parametrize(("variant", "task"), DEFAULT)
def test_preset_starts_and_trains_on_tiny_data(
    variant: str, task: str, tmp_path: Path, data_dir: Path
) -> None:
    _run(variant, task, tmp_path, data_dir)


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "task"), FULL)
def test_every_other_preset_starts_and_trains_on_tiny_data(
    variant: str, task: str, tmp_path: Path, data_dir: Path
) -> None:
    _run(variant, task, tmp_path, data_dir)
