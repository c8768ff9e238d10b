"""The validated experiment config: every check happens here, before any data or model exists.

Hydra composes ``conf/`` into a DictConfig; :func:`validate_experiment` turns
``OmegaConf.to_container(cfg, resolve=True)`` into an :class:`ExperimentConfig`. The
sub-nodes ``task``, ``attention`` and ``model`` are validated by the discriminated unions of
their owners (``experiments.data.config``, :func:`spectrans.config.layers.parse_layer_config`,
``spectrans.config.models``); the harness nodes (optimizer, scheduler, trainer, ...) are
defined in :mod:`experiments.config.groups`. Every model forbids unknown keys, so a
misspelled key is an error.

A failure is a :class:`ConfigError` whose message is one sentence naming the key, the value
and the allowed choices, e.g. ``attention.name = 'perfomer' is invalid; choose one of:
softmax, spectral, ...``.

Modules: ``groups`` (harness group models), ``schema`` (:class:`ExperimentConfig`),
``errors`` (pydantic error to one sentence), ``validate`` (:func:`validate_experiment`),
``resolvers`` (OmegaConf resolvers), ``run_id`` (:func:`new_run_id`). Importing this package
registers the resolvers.
"""

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
