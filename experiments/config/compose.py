"""Compose ``conf/`` with overrides and validate it, as ``train.py`` does, outside a Hydra app."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiments.config.schema import ExperimentConfig

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
"""The repository's Hydra config tree."""


def compose_experiment(overrides: list[str]) -> ExperimentConfig:
    """The validated :class:`ExperimentConfig` of ``config.yaml`` with ``overrides``.

    Raises:
        ConfigError: An invalid value (one sentence naming the key).
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from experiments.config.validate import validate_experiment

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return validate_experiment(OmegaConf.to_container(cfg, resolve=True))
