"""A Weights & Biases logger that never blocks: offline unless explicitly online with a key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from experiments.config import ConfigError, ExperimentConfig


def wandb_offline(requested: bool | None) -> bool:
    """Whether to log offline.

    ``requested`` wins when set; otherwise offline unless ``WANDB_MODE=online`` and
    ``WANDB_API_KEY`` is present (so no login prompt can ever appear).
    """
    if requested is not None:
        return requested
    return not (os.environ.get("WANDB_MODE") == "online" and os.environ.get("WANDB_API_KEY"))


def make_wandb_logger(exp: ExperimentConfig, run_dir: Path) -> Any:
    """``WandbLogger`` writing under ``run_dir/wandb``.

    Its id is the run directory's name, so a resumed run continues the same wandb run.
    """
    try:
        import wandb  # noqa: F401
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:
        raise ConfigError(
            "logger.name = 'wandb' needs the wandb package; pip install 'spectrans-lra[wandb]' "
            "or choose one of: tensorboard, csv, none"
        ) from None
    offline = wandb_offline(exp.logger.offline)
    if offline:
        os.environ["WANDB_MODE"] = "offline"
    os.environ.setdefault("WANDB_SILENT", "true")
    (run_dir / "wandb").mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=exp.logger.project,
        save_dir=str(run_dir),
        offline=offline,
        id=run_dir.name,
        name=f"{exp.name}/{run_dir.name}",
        resume="allow",
    )
