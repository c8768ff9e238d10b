"""Every ``conf/experiment/lra/*`` preset, composed and validated, against the one LRA table.

The table is ``scripts/make_presets.py``'s ``LRA`` (one row per task) and ``VARIANTS``; the
presets are read back through Hydra and :func:`experiments.config.validate_experiment`, so a
value lost on the way (a key dropped, a default winning over the preset) fails here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.config import ExperimentConfig, validate_experiment
from spectrans.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
_spec = importlib.util.spec_from_file_location("make_presets", ROOT / "scripts/make_presets.py")
presets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(presets)  # type: ignore[union-attr]

GRID = [(v, t) for v in presets.VARIANTS for t in presets.LRA]


def _load(variant: str, task: str) -> ExperimentConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment=lra/{variant}-{task}"])
    return validate_experiment(OmegaConf.to_container(cfg, resolve=True))


def test_every_table_entry_has_a_preset_file_and_no_other_exists() -> None:
    files = {p.stem for p in (CONF / "experiment" / "lra").glob("*.yaml")}
    assert files == {f"{v}-{t}" for v, t in GRID}


@pytest.mark.parametrize(("variant", "task"), GRID)
def test_preset_matches_the_lra_table_field_by_field(variant: str, task: str) -> None:
    exp = _load(variant, task)
    row = presets.LRA[task]
    got = {
        "layers": exp.model.num_layers,
        "emb": exp.model.hidden_dim,
        "mlp": exp.model.ffn_hidden_dim,
        "batch": exp.data.batch_size,
        "lr": exp.optimizer.lr,
        "schedule": exp.scheduler.name,
        "warmup": exp.scheduler.warmup_steps,
        "steps": exp.trainer.max_steps,
        "eval_every": exp.trainer.val_check_interval,
        "wd": exp.optimizer.weight_decay,
        "pooling": exp.model.pooling,
        "dropout": exp.model.dropout,
        "attention_dropout": exp.model.attention_dropout,
        "positions": exp.model.positional_encoding,
        "clip": exp.trainer.gradient_clip_val,
    }
    assert got == {key: row[key] for key in got}
    assert exp.model.head_hidden_dim == row["mlp"]  # classifier Dense(mlp) -> ReLU -> Dense
    assert exp.trainer.check_val_every_n_epoch is None  # step-based: LRA's eval interval
    assert "check_val_every_n_epoch" in exp.trainer.trainer_kwargs()
    assert (exp.optimizer.betas, exp.optimizer.eps, exp.optimizer.decay_all) == (
        (0.9, 0.98),
        1e-9,
        True,
    )
    for key, value in presets.MODEL_LRA.items():
        assert getattr(exp.model, key) == value, key
    assert (exp.model.embedding_init_std, exp.model.cls_init_std) == (1.0, 0.0)
    # LRA masks attention with inputs > 0: padding on the text tasks (token 0 is padding
    # there, the mask from lengths), padding and every black pixel on the pixel tasks; LRA's
    # Performer ignores the mask, which on the pixel tasks (no padding) is the lengths mask.
    pixels = task in ("image", "pathfinder", "pathx") and variant != "lra-performer"
    assert exp.task.mask == ("lra_nonzero" if pixels else "lengths")
    assert exp.variant == variant
    for key, value in row["task"].items():
        if key != "generate":
            assert getattr(exp.task, key) == value, key


@pytest.mark.parametrize(("variant", "task"), GRID)
def test_preset_attention_matches_the_table(variant: str, task: str) -> None:
    exp = _load(variant, task)
    group, extra, per_task = presets.VARIANTS[variant]
    assert exp.attention.name == group
    row = presets.LRA[task]
    fields = REGISTRY[group].config_class.model_fields
    if "num_heads" in fields:
        heads = per_task.get(task, {}).get("num_heads", row["heads"])
        assert exp.attention.num_heads == heads
        assert exp.attention.num_heads * exp.attention.resolved_head_dim == row["qkv"]
    if "bias" in fields:
        assert exp.attention.bias is False
    if "init_weights" in fields:  # the mixer's dense layers start as the model's do
        assert exp.attention.init_weights == presets.INIT_WEIGHTS == exp.model.init_weights
    for key, value in {**extra, **per_task.get(task, {})}.items():
        assert getattr(exp.attention, key) == value, key


def test_lra_performer_is_lra_s_feature_map_per_task() -> None:
    listops = _load("lra-performer", "listops").attention
    assert (listops.generalized, listops.num_features, listops.use_orthogonal) == (False, 2, True)
    assert listops.feature_redraw and listops.redraw_interval == 1
    for task in ("text", "retrieval", "image", "pathfinder", "pathx"):
        assert _load("lra-performer", task).attention.generalized, task
    assert _load("lra-performer", "pathfinder").attention.num_heads == 8
    assert _load("lra-performer", "pathfinder").attention.resolved_head_dim == 2
    ours = _load("performer", "listops").attention
    assert (ours.generalized, ours.num_features) == (False, 256)
    assert set(presets.FEATURE_MAP) == {"performer", "lra-performer"}


def test_only_path_x_clips_and_image_and_path_x_learn_positions() -> None:
    clip = {t for t, row in presets.LRA.items() if row["clip"] is not None}
    learned = {t for t, row in presets.LRA.items() if row["positions"] == "learned"}
    assert (clip, learned) == ({"pathx"}, {"image", "pathx"})


@pytest.mark.parametrize("task", ["listops", "pathfinder"])
def test_the_pixel_path_presets_build_a_lecun_head_and_the_others_a_std_002_head(
    task: str,
) -> None:
    """Pathfinder-32 and Path-X give the classifier head the LRA code's init (LeCun normal,
    std about 1/sqrt(fan_in)); every other layer, and every layer of the other tasks' presets,
    starts at std 0.02."""
    from spectrans.models import build_classifier

    exp = _load("softmax", task)
    assert exp.model.head_init_mode == ("xavier" if task == "pathfinder" else "truncnormal002")
    torch.manual_seed(0)
    model = build_classifier(
        exp.model,
        exp.attention,
        vocab_size=20 if task == "listops" else 256,
        num_classes=10 if task == "listops" else 2,
        max_length=64,
        pair=False,
        input_type="tokens",
    )
    head = model.head.dense.weight
    lecun = 1 / head.shape[1] ** 0.5
    if task == "pathfinder":
        assert 0.75 * lecun < head.std().item() < 1.05 * lecun  # truncated at 2 std: ~0.88
    else:
        assert head.std().item() < 0.025
    blocks = [p for n, p in model.named_parameters() if ".blocks." in n and p.ndim == 2]
    assert blocks and all(p.std().item() < 0.025 for p in blocks)
