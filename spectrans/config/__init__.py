"""Pydantic v2 configs of spectrans (layers, models, attention patterns)."""

from spectrans.config.core import AttentionLayerConfig, InitWeightsMode, TokenMixerConfig
from spectrans.config.layers import parse_layer_config
from spectrans.config.models import EncoderModelConfig, LSTModelConfig, ModelConfigUnion
from spectrans.config.patterns import (
    AttentionPattern,
    AttentionPatternSet,
    TokenSpec,
    validate_attention_patterns,
)

__all__ = [
    "AttentionLayerConfig",
    "AttentionPattern",
    "AttentionPatternSet",
    "EncoderModelConfig",
    "InitWeightsMode",
    "LSTModelConfig",
    "ModelConfigUnion",
    "TokenMixerConfig",
    "TokenMixerConfigUnion",
    "TokenSpec",
    "parse_layer_config",
    "validate_attention_patterns",
]


def __getattr__(name: str) -> object:
    if name == "TokenMixerConfigUnion":  # derived from the registry on first access
        from spectrans.config import layers

        return layers.token_mixer_config_union()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
