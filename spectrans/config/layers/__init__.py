"""Layer configs and their discriminated union (on ``name``).

The union is derived from :mod:`spectrans.registry` (every registered config class), so it is
built on first access: ``TokenMixerConfigUnion`` is a module attribute computed then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from spectrans.config.core import TokenMixerConfig
from spectrans.config.layers.attention import (
    DCTAttentionConfig,
    HadamardAttentionConfig,
    LSTAttentionConfig,
    MixedTransformAttentionConfig,
    PerformerAttentionConfig,
    SoftmaxAttentionConfig,
    SpectralAttentionConfig,
    SpectralKernelAttentionConfig,
)
from spectrans.config.layers.mixing import (
    AFNOMixingConfig,
    FNetMixingConfig,
    FNOMixingConfig,
    GlobalFilterMixingConfig,
    S4DMixingConfig,
    WaveletMixingConfig,
)

_ADAPTERS: dict[tuple[type, ...], TypeAdapter[Any]] = {}


def token_mixer_config_union() -> Any:
    """``Annotated[A | B | ..., Field(discriminator="name")]`` over every registered config."""
    from spectrans.registry import config_classes

    return Annotated[Union[config_classes()], Field(discriminator="name")]  # noqa: UP007


def parse_layer_config(data: TokenMixerConfig | Mapping[str, Any]) -> TokenMixerConfig:
    """The registered config class that ``data["name"]`` selects, validated from ``data``.

    A config object passes through unchanged (it was validated when it was made); a mapping
    is validated once, by the discriminated union of every registered config class.

    Raises:
        pydantic.ValidationError: unknown name, unknown key, or a bad value.
    """
    if isinstance(data, TokenMixerConfig):
        return data
    from spectrans.registry import config_classes

    key = config_classes()
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(token_mixer_config_union())
    return _ADAPTERS[key].validate_python(dict(data))


def __getattr__(name: str) -> Any:
    if name == "TokenMixerConfigUnion":
        return token_mixer_config_union()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AFNOMixingConfig",
    "DCTAttentionConfig",
    "FNOMixingConfig",
    "FNetMixingConfig",
    "GlobalFilterMixingConfig",
    "HadamardAttentionConfig",
    "LSTAttentionConfig",
    "MixedTransformAttentionConfig",
    "PerformerAttentionConfig",
    "S4DMixingConfig",
    "SoftmaxAttentionConfig",
    "SpectralAttentionConfig",
    "SpectralKernelAttentionConfig",
    "TokenMixerConfigUnion",
    "WaveletMixingConfig",
    "parse_layer_config",
    "token_mixer_config_union",
]
