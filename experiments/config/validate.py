"""Validation of a resolved config dict into an :class:`ExperimentConfig`.

The sub-nodes ``task``, ``attention`` and ``model`` are validated first by the discriminated
unions of their owners, then the whole dict by :class:`ExperimentConfig`; the first error of
each becomes a :class:`ConfigError` of one sentence.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, TypeAdapter

from experiments.config.errors import ConfigError, _field_model, _validate_node
from experiments.config.schema import ExperimentConfig
from spectrans.config.layers import parse_layer_config
from spectrans.registry import names as registry_names


def _owned_unions() -> tuple[tuple[str, Any, list[type]], ...]:
    """Nodes validated by unions owned elsewhere: key, validating callable, member classes."""
    from experiments.data.config import parse_task_config
    from experiments.data.registry import config_classes
    from spectrans.config.models import ModelConfigUnion

    model_union = typing.get_args(ModelConfigUnion)[0]
    return (
        ("task", parse_task_config, list(config_classes())),
        (
            "model",
            TypeAdapter(ModelConfigUnion).validate_python,
            list(typing.get_args(model_union)),
        ),
    )


def _owner_by_name(members: list[type]) -> Any:
    """``owner_of`` callback: the union member whose ``name`` default equals the node's name."""

    def owner_of(data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
        name = data.get("name") if isinstance(data, dict) else None
        for member in members:
            field = getattr(member, "model_fields", {}).get("name")
            if field is not None and field.default == name and len(loc) == 1:
                return member
        return None

    return owner_of


def _mixer_owner(data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    from spectrans.registry import REGISTRY

    name = data.get("name") if isinstance(data, dict) else None
    entry = REGISTRY.get(str(name))
    return entry.config_class if entry is not None and len(loc) == 1 else None


def validate_experiment(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a resolved config dict (``OmegaConf.to_container(cfg, resolve=True)``).

    Raises:
        ConfigError: one sentence naming the key, the value and the allowed choices.
    """
    raw = dict(raw)
    raw.pop("hydra", None)
    for group in ("launcher", "experiment", "debug", "hparams_search"):
        raw.pop(group, None)  # selection-only groups, merged elsewhere
    attention = raw.get("attention")
    if isinstance(attention, dict):
        name = attention.get("name")
        if name not in registry_names():
            raise ConfigError(
                f"attention.name = {name!r} is invalid; choose one of: "
                f"{', '.join(registry_names())}"
            )
        raw["attention"] = _validate_node(parse_layer_config, attention, "attention", _mixer_owner)
    for key, validate, members in _owned_unions():
        if key in raw:
            raw[key] = _validate_node(validate, raw[key], key, _owner_by_name(members))

    def owner_of(_data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
        return _field_model(ExperimentConfig, loc)

    return _validate_node(ExperimentConfig.model_validate, raw, "", owner_of)
