"""Generate ``conf/experiment/lra/<variant>-<task>.yaml``.

Run ``python scripts/make_presets.py`` after changing the table below; ``--check`` only
reports files that differ (a test runs it). ``conf/attention/*.yaml`` come from
``scripts/make_attention_confs.py``.

- ``conf/experiment/lra/<variant>-<task>.yaml``: the LRA code-config hyperparameters
  (table :data:`LRA`, see docs/lra_protocol.md): layers / emb / heads / qkv / mlp, batch, lr
  factor and schedule, warmup and steps, evaluation interval, weight decay (on every
  parameter), pooling, dropout and attention dropout, position embedding, gradient clipping,
  token-embedding init, projection bias and the retrieval head, for each variant and task.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spectrans.registry import REGISTRY  # noqa: E402

CONF = ROOT / "conf"

# variant -> (attention group, extra attention keys, per-task attention keys)
VARIANTS: dict[str, tuple[str, dict[str, Any], dict[str, dict[str, Any]]]] = {
    "softmax": ("softmax", {}, {}),
    # our Performer: FAVOR+ with 256 orthogonal positive random features
    "performer": ("performer", {"num_features": 256, "generalized": False}, {}),
    # LRA's Performer (lra_benchmarks/*/configs/performer_base.py): FAVOR+ softmax features
    # with 2 random features (ortho_scaling 0, redrawn every call) on ListOps, the
    # deterministic ReLU ("generalized") kernel elsewhere, 8 heads on Pathfinder-32.
    "lra-performer": (
        "performer",
        {"generalized": True},
        {
            "listops": {
                "generalized": False,
                "num_features": 2,
                "use_orthogonal": True,
                "feature_redraw": True,
                "redraw_interval": 1,
            },
            "pathfinder": {"num_heads": 8},
        },
    ),
    "spectral": ("spectral", {}, {}),
    "lst-dct": ("lst", {"transform_type": "dct"}, {}),
    "lst-dst": ("lst", {"transform_type": "dst"}, {}),
    "lst-hadamard": ("lst", {"transform_type": "hadamard"}, {}),
    "mixed": ("mixed", {}, {}),
    "fnet": ("fnet", {}, {}),
    "global_filter": ("global_filter", {}, {}),
    "lst-wavelet": ("lst", {"transform_type": "wavelet"}, {}),
    "afno": ("afno", {}, {}),
    "wavelet": ("wavelet", {}, {}),
    "fno": ("fno", {}, {}),
    "s4d": ("s4d", {"bidirectional": True}, {}),
}
VARIANT_MASK = {"lra-performer": "lengths"}
"""Variants whose LRA model does not use the task's attention mask. LRA's Performer
(``performer_attention.py``, ``FastAttentionviaLowRankDecomposition``) ignores the mask it
is given: every key counts, black pixels included, so on the pixel tasks (no padding) the
mask from lengths, which masks nothing there, reproduces it."""
VARIANT_MASK_NOTE = {"lra-performer": "LRA's Performer ignores the mask: every pixel counts"}
"""Why a variant of :data:`VARIANT_MASK` masks as it does, for the headers of its presets."""
FEATURE_MAP = {
    "performer": "FAVOR+, 256 orthogonal positive random features",
    "lra-performer": "LRA's Performer: FAVOR+ 2 features on ListOps, ReLU kernel elsewhere",
}
"""How each Performer variant is named in tables (by its feature map)."""

# The LRA code configs (google-research/long-range-arena, lra_benchmarks/*/configs/
# *transformer_base.py and their base configs), one row per task. eval_every: LRA's
# eval_frequency in steps (image and pathfinder: one epoch = train examples // batch).
# mask: the LRA models' attention mask is `inputs > 0` on every task. On the text tasks token
# 0 is padding, so that is the mask from lengths; on the pixel tasks it also masks every black
# pixel (task.mask=lra_nonzero), which decides whether Pathfinder-32 is learnt at all
# (results/ablations/pathfinder-mask.md: the softmax preset at chance for 62,400 steps with the mask
# from lengths, 68.8% test accuracy after 11,107 steps with lra_nonzero).
LRA: dict[str, dict[str, Any]] = {
    "listops": dict(
        layers=4,
        emb=512,
        heads=8,
        qkv=512,
        mlp=1024,
        batch=32,
        lr=0.05,
        schedule="rsqrt",
        warmup=1000,
        steps=5000,
        eval_every=50,
        wd=0.1,
        pooling="cls",
        dropout=0.1,
        attention_dropout=0.1,
        positions="sinusoidal",
        clip=None,
        mask="lengths",
        task={
            "path": "listops-1000",
            "max_length": 2000,
            "pad_to": "max_length",
            "generate": {"size": "full", "seed": 0, "workers": 8},
        },
    ),
    "text": dict(
        layers=4,
        emb=256,
        heads=4,
        qkv=256,
        mlp=1024,
        batch=32,
        lr=0.05,
        schedule="rsqrt",
        warmup=8000,
        steps=20000,
        eval_every=100,
        wd=0.1,
        pooling="cls",
        dropout=0.1,
        attention_dropout=0.1,
        positions="sinusoidal",
        clip=None,
        mask="lengths",
        task={"max_length": 1000},
    ),
    "retrieval": dict(
        layers=4,
        emb=128,
        heads=4,
        qkv=128,
        mlp=512,
        batch=32,
        lr=0.05,
        schedule="rsqrt",
        warmup=8000,
        steps=5000,
        eval_every=100,
        wd=0.1,
        pooling="cls",
        dropout=0.1,
        attention_dropout=0.1,
        positions="sinusoidal",
        clip=None,
        mask="lengths",
        task={"max_length": 4000},
    ),
    "image": dict(
        layers=1,
        emb=128,
        heads=8,
        qkv=64,
        mlp=128,
        batch=256,
        lr=5e-4,
        schedule="cosine",
        warmup=175,
        steps=35000,
        eval_every=175,
        wd=0.0,
        pooling="cls",
        dropout=0.3,
        attention_dropout=0.2,
        positions="learned",
        clip=None,
        mask="lra_nonzero",
        task={},
    ),
    "pathfinder": dict(
        layers=4,
        emb=32,
        heads=4,
        qkv=16,
        mlp=32,
        batch=512,
        lr=1e-3,
        schedule="cosine",
        warmup=312,
        steps=62400,
        eval_every=312,
        wd=0.0,
        pooling="mean",
        dropout=0.2,
        attention_dropout=0.1,
        positions="sinusoidal",
        clip=None,
        mask="lra_nonzero",
        task={"resolution": 32, "difficulty": "curv_contour_length_14"},
    ),
    "pathx": dict(
        layers=1,
        emb=32,
        heads=2,
        qkv=16,
        mlp=32,
        batch=64,
        lr=1e-3,
        schedule="cosine",
        warmup=2500,
        steps=500000,
        eval_every=2500,
        wd=0.0,
        pooling="mean",
        dropout=0.1,
        attention_dropout=0.1,
        positions="learned",
        clip=1.0,
        mask="lra_nonzero",
        task={"resolution": 128, "difficulty": "curv_contour_length_14"},
    ),
}
INIT_WEIGHTS = "truncnormal002"
"""Init of every dense layer of the presets' models and mixers (``init_weights``). The LRA
code's own init is ``xavier`` (Xavier-uniform kernels, LeCun-normal head); the presets keep
the library's std-0.02 init, a deviation listed in docs/lra_protocol.md. Changing this value
makes the runs of the earlier presets stale (experiments/protocol.py)."""

HEAD_INIT_WEIGHTS: dict[str, str] = {"pathfinder": "xavier", "pathx": "xavier"}
"""Tasks whose presets give the classifier head the LRA code's init (``head_init_weights``:
flax's ``Dense`` default, LeCun normal, std ``1/sqrt(fan_in)``, biases zero) while every other
layer keeps :data:`INIT_WEIGHTS`. On Pathfinder-32 the std-0.02 head's ReLU units died (none
positive for any input: only the output bias learns, the run stays at chance) in 7 of the 10
runs of the earlier presets whose head was measured or that learned (the six with the metric
logged lost it by step 1,247), while the one run with LRA's head kept them and learned
(results/ablations/pathfinder-head-init.md). Mean pooling over mostly masked black pixels gives
pooled features that barely differ between images, so a head of std-0.02 kernels sees
pre-activations that barely differ either, and Adam's steps on its biases (about ``lr`` each,
whatever the gradient's size) push a unit below zero for every input. With kernels of std
``1/sqrt(32)`` the spread is about nine times larger
(results/ablations/pathfinder-init-signal-head.md)."""

MODEL_LRA: dict[str, Any] = {
    "init_weights": INIT_WEIGHTS,
    "ffn_activation": "gelu",
    "embedding_init_std": 1.0,
    "cls_init_std": 0.0,
    "retrieval_interaction": "concat2",
    "retrieval_head": "lra",
}
"""Model settings of the LRA code shared by every task: GELU MLP, token embedding N(0, 1),
CLS token zeros, retrieval head ``[u, v] -> Dense(mlp) -> ReLU -> Dense(mlp/2) -> ReLU ->
Dense`` (``classifier_head_dual`` with no interaction)."""
CHECKPOINT_EVERY = 500
MASK_NOTE = {
    "lengths": "from lengths (LRA's inputs > 0: token 0 is padding)",
    "lra_nonzero": "LRA's inputs > 0 (black pixels masked)",
}


def mask_note(variant: str, task: str) -> str:
    """How the preset of ``variant`` on ``task`` masks attention, for its header."""
    mask = VARIANT_MASK.get(variant, LRA[task]["mask"])
    if mask != LRA[task]["mask"]:
        return f"{MASK_NOTE[mask].split(' (')[0]} ({VARIANT_MASK_NOTE[variant]})"
    return MASK_NOTE[mask]


def attention_node(variant: str, task: str) -> dict[str, Any]:
    """The ``attention`` keys a preset sets for ``variant`` on ``task``.

    A registered mixer name that is not a variant gets the keys of a plain variant of it
    (LRA heads and head width where its config has heads, no projection bias).
    """
    group, extra, per_task = VARIANTS.get(variant, (variant, {}, {}))
    p = LRA[task]
    fields = REGISTRY[group].config_class.model_fields
    node: dict[str, Any] = {}
    if "num_heads" in fields:
        node.update(num_heads=p["heads"], head_dim=p["qkv"] // p["heads"])
    if "bias" in fields:
        node["bias"] = False  # LRA: q/k/v/out projections without bias
    if "init_weights" in fields:
        node["init_weights"] = INIT_WEIGHTS
    node.update(extra)
    node.update(per_task.get(task, {}))
    if "num_heads" in node and "head_dim" in node:
        node["head_dim"] = p["qkv"] // node["num_heads"]
    return node


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)


def preset_body(variant: str, task: str) -> dict[str, Any]:
    """The config tree of ``conf/experiment/lra/<variant>-<task>.yaml``."""
    group = VARIANTS[variant][0]
    p = LRA[task]
    body: dict[str, Any] = {
        "defaults": [
            {"override /task": task},
            {"override /attention": group},
            {"override /model": "encoder"},
            {"override /optimizer": "adamw"},
            {"override /scheduler": p["schedule"]},
        ],
        "name": f"lra-{task}-{variant}",
        "task": {**p["task"], "mask": VARIANT_MASK.get(variant, p["mask"])},
        "attention": attention_node(variant, task),
        "model": {
            "hidden_dim": p["emb"],
            "num_layers": p["layers"],
            "ffn_hidden_dim": p["mlp"],
            "head_hidden_dim": p["mlp"],
            "pooling": p["pooling"],
            "dropout": p["dropout"],
            "attention_dropout": p["attention_dropout"],
            "positional_encoding": p["positions"],
            **MODEL_LRA,
        },
        "data": {"batch_size": p["batch"]},
        "optimizer": {
            "lr": p["lr"],
            "betas": [0.9, 0.98],
            "eps": 1e-9,
            "weight_decay": p["wd"],
            "decay_all": True,
        },
        "scheduler": {"warmup_steps": p["warmup"]},
        "trainer": {
            "max_steps": p["steps"],
            "val_check_interval": p["eval_every"],
            "check_val_every_n_epoch": None,
            "gradient_clip_val": p["clip"],
        },
        "callbacks": {"checkpoint_every_n_steps": CHECKPOINT_EVERY},
    }
    if task in HEAD_INIT_WEIGHTS:
        body["model"]["head_init_weights"] = HEAD_INIT_WEIGHTS[task]
    if variant != group:
        body["variant_label"] = variant
    if not body["attention"]:
        del body["attention"]
    return body


def preset_yaml(variant: str, task: str) -> str:
    """Text of ``conf/experiment/lra/<variant>-<task>.yaml``."""
    p = LRA[task]
    lr_note = (
        "lr is the rsqrt factor: lr(s) = lr*min(1,s/w)/sqrt(max(s,w))"
        if p["schedule"] == "rsqrt"
        else "warmup then cosine decay to 0"
    )
    feature_map = f"# {variant}: {FEATURE_MAP[variant]}.\n" if variant in FEATURE_MAP else ""
    head_note = (
        f"# Classifier head: the LRA code's init (LeCun normal); every other layer "
        f"{INIT_WEIGHTS}.\n"
        if task in HEAD_INIT_WEIGHTS
        else ""
    )
    header = (
        "# @package _global_\n"
        f"# LRA code config for {task} with {variant}: layers {p['layers']}, emb {p['emb']}, "
        f"heads {p['heads']}, qkv {p['qkv']}, mlp {p['mlp']},\n"
        f"# batch {p['batch']}, {lr_note}, warmup {p['warmup']}, steps {p['steps']}, "
        f"evaluate every {p['eval_every']} steps,\n"
        f"# weight decay {p['wd']} on every parameter, pooling {p['pooling']}, dropout "
        f"{p['dropout']} / attention {p['attention_dropout']}, {p['positions']} positions, "
        f"clip {p['clip']}.\n"
        f"# Attention mask: {mask_note(variant, task)}.\n"
        f"{head_note}"
        f"{feature_map}"
        "# Deviations from the LRA code and the options that restore it: docs/lra_protocol.md.\n"
        "# Generated by scripts/make_presets.py (edit the table there, not this file).\n"
        f"# Run: python train.py experiment=lra/{variant}-{task} trainer=gpu\n"
    )
    return header + _yaml(preset_body(variant, task))


def expected_files() -> dict[Path, str]:
    """Every generated file and its text."""
    files: dict[Path, str] = {}
    for variant in VARIANTS:
        for task in LRA:
            files[CONF / "experiment" / "lra" / f"{variant}-{task}.yaml"] = preset_yaml(
                variant, task
            )
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the generated configs; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale files, write none")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_files().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "stale" if args.check else "wrote"
    for path in stale:
        print(f"{verb}: {path.relative_to(ROOT)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
