"""The mixer table: one declaration per mixer; the config union and names derive from it."""

from __future__ import annotations

import typing
from typing import Literal

import pytest
from torch import nn

from spectrans import registry
from spectrans.config import layers as layer_configs
from spectrans.config.core import TokenMixerConfig
from spectrans.config.layers import parse_layer_config


def test_union_members_are_the_registered_configs() -> None:
    union = typing.get_args(typing.get_args(layer_configs.TokenMixerConfigUnion)[0])
    literals = [typing.get_args(c.model_fields["name"].annotation)[0] for c in union]
    assert literals == registry.names()
    for name in registry.names():
        assert registry.get_entry(name).config_class.model_fields["name"].default == name


def test_entries_carry_family_complexity_and_causal_support() -> None:
    for entry in registry.entries():
        assert entry.family in ("attention", "mixing")
        assert entry.complexity in ("O(n)", "O(n log n)", "O(n^2)")
        assert entry.causal == entry.cls.supports_causal
        assert entry.paper and entry.description


def test_a_new_registration_reaches_the_union_and_the_builder() -> None:
    class _ToyConfig(TokenMixerConfig):
        name: Literal["toy_identity"] = "toy_identity"

    @registry.register_mixer(
        "toy_identity", _ToyConfig, family="mixing", complexity="O(n)", description="d", paper="p"
    )
    class _Toy(nn.Module):
        supports_causal = True

        def __init__(self, **_: object) -> None:
            super().__init__()

        @classmethod
        def from_config(cls, config: TokenMixerConfig) -> _Toy:
            return cls(**config.layer_kwargs())

    try:
        assert "toy_identity" in registry.names("mixing")
        assert isinstance(parse_layer_config({"name": "toy_identity"}), _ToyConfig)
        assert isinstance(registry.build_layer({"name": "toy_identity"}), _Toy)
    finally:
        registry._TABLE.pop("toy_identity")
    with pytest.raises(Exception, match="toy_identity"):
        parse_layer_config({"name": "toy_identity"})


def test_name_must_match_the_config_literal_and_be_unique() -> None:
    with pytest.raises(ValueError, match="must be 'other'"):
        registry.register_mixer(
            "other",
            layer_configs.FNetMixingConfig,
            family="mixing",
            complexity="O(n)",
            description="d",
            paper="p",
        )
    decorate = registry.register_mixer(
        "fnet",
        layer_configs.FNetMixingConfig,
        family="mixing",
        complexity="O(n)",
        description="d",
        paper="p",
    )
    with pytest.raises(ValueError, match="already taken"):
        decorate(type("Impostor", (nn.Module,), {}))
