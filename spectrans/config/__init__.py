"""Pydantic v2 configs of spectrans (layers, models, attention patterns)."""

from spectrans.config.core import AttentionLayerConfig, InitWeightsMode, TokenMixerConfig
from spectrans.config.layers import TokenMixerConfigUnion, parse_layer_config

__all__ = [
    "AttentionLayerConfig",
    "InitWeightsMode",
    "TokenMixerConfig",
    "TokenMixerConfigUnion",
    "parse_layer_config",
]
