"""Layer configs and their discriminated union (on ``name``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

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
from spectrans.config.layers.mixing import FNetMixingConfig, GlobalFilterMixingConfig

TokenMixerConfigUnion = Annotated[
    SoftmaxAttentionConfig
    | SpectralAttentionConfig
    | PerformerAttentionConfig
    | SpectralKernelAttentionConfig
    | LSTAttentionConfig
    | DCTAttentionConfig
    | HadamardAttentionConfig
    | MixedTransformAttentionConfig
    | FNetMixingConfig
    | GlobalFilterMixingConfig,
    Field(discriminator="name"),
]
"""Any token-mixer config, chosen by its ``name``."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(TokenMixerConfigUnion)


def parse_layer_config(data: dict[str, Any]) -> Any:
    """Validate a plain dict into the config class its ``name`` selects.

    Raises:
        pydantic.ValidationError: unknown name, unknown key, or a bad value.
    """
    return _ADAPTER.validate_python(data)


__all__ = [
    "DCTAttentionConfig",
    "FNetMixingConfig",
    "GlobalFilterMixingConfig",
    "HadamardAttentionConfig",
    "LSTAttentionConfig",
    "MixedTransformAttentionConfig",
    "PerformerAttentionConfig",
    "SoftmaxAttentionConfig",
    "SpectralAttentionConfig",
    "SpectralKernelAttentionConfig",
    "TokenMixerConfigUnion",
    "parse_layer_config",
]
