"""The validated experiment config: every check happens here, before any data or model exists.

Hydra composes ``conf/`` into a DictConfig; :func:`validate_experiment` turns
``OmegaConf.to_container(cfg, resolve=True)`` into an :class:`ExperimentConfig` in one
pydantic pass. Its ``task``, ``attention`` and ``model`` fields are the discriminated unions
of the registered config classes (the task and token-mixer tables, the model configs), so
they hold config objects; the harness nodes (optimizer, scheduler, trainer, ...) are defined
in :mod:`experiments.config.groups`. Every model forbids unknown keys, so a misspelled key is
an error.

A failure is a :class:`ConfigError` whose message is one sentence naming the key, the value
and the allowed choices, e.g. ``attention.name = 'perfomer' is invalid; choose one of:
softmax, spectral, ...``.

Modules: ``groups`` (harness group models), ``schema`` (:class:`ExperimentConfig`),
``errors`` (pydantic error to one sentence), ``validate`` (:func:`validate_experiment`),
``resolvers`` (OmegaConf resolvers), ``run_id`` (:func:`new_run_id`). Importing this package
registers the resolvers; :class:`ExperimentConfig` and :func:`validate_experiment` are
imported on first use, since building the unions imports every layer and task module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiments.config.errors import ConfigError
from experiments.config.groups import (
    CallbacksConfig,
    DataConfig,
    LoggerConfig,
    OptimizerConfig,
    PathsConfig,
    Precision,
    SchedulerConfig,
    TrainerConfig,
)
from experiments.config.resolvers import register_resolvers, task_length, variant_name
from experiments.config.run_id import new_run_id

if TYPE_CHECKING:
    from experiments.config.schema import ExperimentConfig
    from experiments.config.validate import validate_experiment

__all__ = [
    "CallbacksConfig",
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "LoggerConfig",
    "OptimizerConfig",
    "PathsConfig",
    "Precision",
    "SchedulerConfig",
    "TrainerConfig",
    "new_run_id",
    "register_resolvers",
    "task_length",
    "validate_experiment",
    "variant_name",
]

register_resolvers()


def __getattr__(name: str) -> Any:
    if name == "ExperimentConfig":
        from experiments.config.schema import ExperimentConfig

        return ExperimentConfig
    if name == "validate_experiment":
        from experiments.config.validate import validate_experiment

        return validate_experiment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
