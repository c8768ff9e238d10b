"""Validation of a resolved config dict into an :class:`ExperimentConfig`, in one pass.

Pydantic validates the whole dict once: each of ``task``, ``attention`` and ``model`` becomes
the config object of the registered class its ``name`` selects. The first error becomes a
:class:`ConfigError` of one sentence.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from experiments.config.errors import ConfigError, error_sentence
from experiments.config.schema import ExperimentConfig

SELECTION_GROUPS = ("hydra", "launcher", "experiment", "debug", "hparams_search")
"""Config groups that only select or merge other values; they are not part of a run's config."""


def validate_experiment(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a resolved config dict (``OmegaConf.to_container(cfg, resolve=True)``).

    Raises:
        ConfigError: one sentence naming the key, the value and the allowed choices.
    """
    data = {key: value for key, value in raw.items() if key not in SELECTION_GROUPS}
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(error_sentence(err.errors()[0], ExperimentConfig, data)) from None
