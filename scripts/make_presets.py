"""Generate ``conf/experiment/lra/<variant>-<task>.yaml``.

Run ``python scripts/make_presets.py`` after changing the table below; ``--check`` only
reports files that differ (a test runs it). ``conf/attention/*.yaml`` come from
``scripts/make_attention_confs.py``.

- ``conf/experiment/lra/<variant>-<task>.yaml``: the LRA code-config hyperparameters of
  ``shared/LRA.md`` (layers / emb / heads / qkv / mlp, batch, lr factor and schedule, warmup
  and steps, weight decay, pooling) for each variant and task.
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

# variant -> (attention group, extra attention keys)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "softmax": ("softmax", {}),
    "performer": ("performer", {}),
    "spectral": ("spectral", {}),
    "lst-dct": ("lst", {"transform_type": "dct"}),
    "lst-dst": ("lst", {"transform_type": "dst"}),
    "lst-hadamard": ("lst", {"transform_type": "hadamard"}),
    "mixed": ("mixed", {}),
    "fnet": ("fnet", {}),
    "lst-wavelet": ("lst", {"transform_type": "wavelet"}),
    "afno": ("afno", {}),
    "wavelet": ("wavelet", {}),
    "fno": ("fno", {}),
    "s4d": ("s4d", {"bidirectional": True}),
}

# LRA code configs (google-research/long-range-arena), shared/LRA.md.
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
        wd=0.1,
        pooling="cls",
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
        wd=0.1,
        pooling="cls",
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
        wd=0.1,
        pooling="cls",
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
        wd=0.0,
        pooling="cls",
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
        wd=0.0,
        pooling="mean",
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
        wd=0.0,
        pooling="mean",
        task={"resolution": 128, "difficulty": "curv_contour_length_14"},
    ),
}


def _yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)


def preset_yaml(variant: str, task: str) -> str:
    """Text of ``conf/experiment/lra/<variant>-<task>.yaml``."""
    group, extra = VARIANTS[variant]
    p = LRA[task]
    has_heads = "num_heads" in REGISTRY[group].config_class.model_fields
    attention: dict[str, Any] = dict(extra)
    if has_heads:
        attention.update(num_heads=p["heads"], head_dim=p["qkv"] // p["heads"])
    val_every = max(1, min(1000, p["steps"] // 10))
    body: dict[str, Any] = {
        "defaults": [
            {"override /task": task},
            {"override /attention": group},
            {"override /model": "encoder"},
            {"override /optimizer": "adamw"},
            {"override /scheduler": p["schedule"]},
        ],
        "name": f"lra-{task}-{variant}",
        "task": p["task"],
        "attention": attention,
        "model": {
            "hidden_dim": p["emb"],
            "num_layers": p["layers"],
            "ffn_hidden_dim": p["mlp"],
            "head_hidden_dim": p["mlp"],
            "pooling": p["pooling"],
        },
        "data": {"batch_size": p["batch"]},
        "optimizer": {"lr": p["lr"], "betas": [0.9, 0.98], "eps": 1e-9, "weight_decay": p["wd"]},
        "scheduler": {"warmup_steps": p["warmup"]},
        "trainer": {
            "max_steps": p["steps"],
            "val_check_interval": val_every,
            "check_val_every_n_epoch": None,
        },
        "callbacks": {"checkpoint_every_n_steps": min(500, val_every)},
    }
    if not attention:
        del body["attention"]
    lr_note = (
        "lr is the rsqrt factor: lr(s) = lr*min(1,s/w)/sqrt(max(s,w))"
        if p["schedule"] == "rsqrt"
        else "warmup then cosine decay to 0"
    )
    header = (
        "# @package _global_\n"
        f"# LRA code config for {task} with {variant}: layers {p['layers']}, emb {p['emb']}, "
        f"heads {p['heads']}, qkv {p['qkv']}, mlp {p['mlp']},\n"
        f"# batch {p['batch']}, {lr_note}, warmup {p['warmup']}, steps {p['steps']}, "
        f"weight decay {p['wd']}, pooling {p['pooling']}.\n"
        "# Generated by scripts/make_presets.py (edit the table there, not this file).\n"
        f"# Run: python train.py experiment=lra/{variant}-{task} trainer=gpu\n"
    )
    return header + _yaml(body)


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
