"""How many units of a run's classifier head are alive at one of its checkpoints.

Usage::

    python scripts/head_units.py RUN_DIR [--checkpoint last.ckpt] [--data-dir data] [--rows 512]

Builds the run's model from ``RUN_DIR/.hydra/config.yaml`` exactly as ``train.py`` does, loads
``RUN_DIR/checkpoints/<checkpoint>``, takes the first ``--rows`` validation examples of the
run's task from ``--data-dir`` (default: the run's ``paths.data_dir``) and prints, in float32
on the CPU: the units of the head's first hidden layer that are positive for at least one
example (:meth:`spectrans.models.heads.ClassifierHead.live_units`; 0: no gradient reaches any
weight but the output bias), the spread of the logits over the examples, and the loss.
Training records since the field existed carry the same count as ``head_live_units``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.config import validate_experiment  # noqa: E402
from experiments.module import LRAModule  # noqa: E402
from experiments.train import build_datamodule, build_model  # noqa: E402


def first_batch(datamodule: object, rows: int) -> dict[str, torch.Tensor]:
    """The first ``rows`` validation examples as one batch dict."""
    datamodule.batch_size = rows  # type: ignore[attr-defined]
    datamodule.setup("validate")  # type: ignore[attr-defined]
    return next(iter(datamodule.val_dataloader()))  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    """Print the live units, the logits' spread and the loss; 2 on a missing file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", default="last.ckpt")
    parser.add_argument("--data-dir", default=None, help="LRA data root (default: the run's)")
    parser.add_argument("--rows", type=int, default=512)
    args = parser.parse_args(argv)
    config_file = args.run_dir / ".hydra" / "config.yaml"
    checkpoint = args.run_dir / "checkpoints" / args.checkpoint
    for path in (config_file, checkpoint):
        if not path.is_file():
            print(
                f"{path} does not exist: give a run folder and one of its checkpoints",
                file=sys.stderr,
            )
            return 2
    raw = OmegaConf.to_container(OmegaConf.load(config_file), resolve=True)
    if args.data_dir is not None:
        raw["paths"]["data_dir"] = args.data_dir
    raw["data"]["num_workers"] = 0
    exp = validate_experiment(raw)
    datamodule = build_datamodule(exp)
    batch = first_batch(datamodule, args.rows)
    model = build_model(exp, datamodule)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    weights = {
        k.removeprefix("model."): v
        for k, v in state["state_dict"].items()
        if k.startswith("model.")
    }
    model.load_state_dict(weights)
    module = LRAModule(
        model.eval(),
        num_classes=datamodule.num_classes,
        is_pair=datamodule.is_pair,
        optimizer=exp.optimizer,
        scheduler=exp.scheduler,
        max_steps=exp.trainer.max_steps,
    )
    live = module.head_live_units(batch)
    with torch.no_grad():
        logits = module(batch).float()  # (B, C)
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"])
    width = model.head.dense.out_features if hasattr(model, "head") else "?"
    print(
        f"{args.run_dir} at step {state.get('global_step')}: head live units {live} of {width} "
        f"on {len(batch['labels'])} validation examples; logits std over them "
        f"{[round(v, 6) for v in logits.std(0).tolist()]}; loss {loss.item():.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
