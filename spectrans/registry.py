"""One registry from a token-mixer name to its config class and layer class.

The names here, the ``name`` literals of the config classes and the files in
``conf/attention/*.yaml`` are the same three lists; a test keeps them equal.

Examples:
    >>> from spectrans.registry import build_layer, names
    >>> "performer" in names()
    True
    >>> layer = build_layer({"name": "lst", "hidden_dim": 64, "num_heads": 4})
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from spectrans.config import layers as layer_configs
from spectrans.config.core import TokenMixerConfig

Family = Literal["attention", "mixing"]


@dataclass(frozen=True)
class RegistryEntry:
    """A registered token mixer.

    Attributes:
        name: Registry name (``attention=<name>`` on the command line).
        family: ``attention`` (queries/keys or an attention-shaped spectral layer) or
            ``mixing`` (parameter-light spectral mixing, no heads).
        layer_path: ``module:ClassName`` of the layer, imported on first use.
        config_class: The pydantic config class whose ``name`` literal is ``name``.
        description: One line for listings.
    """

    name: str
    family: Family
    layer_path: str
    config_class: type[TokenMixerConfig]
    description: str

    def layer_class(self) -> type[nn.Module]:
        """Import and return the layer class."""
        module_name, class_name = self.layer_path.split(":")
        return getattr(importlib.import_module(module_name), class_name)


_ATT = "spectrans.layers.attention"
_MIX = "spectrans.layers.mixing"
_ENTRIES = [
    RegistryEntry(
        "softmax",
        "attention",
        f"{_ATT}.softmax:SoftmaxAttention",
        layer_configs.SoftmaxAttentionConfig,
        "exact softmax attention (SDPA), O(n^2)",
    ),
    RegistryEntry(
        "spectral",
        "attention",
        f"{_ATT}.spectral:SpectralAttention",
        layer_configs.SpectralAttentionConfig,
        "random Fourier feature attention, O(n)",
    ),
    RegistryEntry(
        "performer",
        "attention",
        f"{_ATT}.spectral:PerformerAttention",
        layer_configs.PerformerAttentionConfig,
        "FAVOR+ positive random features, O(n)",
    ),
    RegistryEntry(
        "kernel",
        "attention",
        f"{_ATT}.spectral:KernelAttention",
        layer_configs.SpectralKernelAttentionConfig,
        "kernel attention, low rank, O(n)",
    ),
    RegistryEntry(
        "lst",
        "attention",
        f"{_ATT}.lst:LSTAttention",
        layer_configs.LSTAttentionConfig,
        "linear spectral transform attn, O(n log n)",
    ),
    RegistryEntry(
        "dct",
        "attention",
        f"{_ATT}.lst:DCTAttention",
        layer_configs.DCTAttentionConfig,
        "LST attention with DCT, O(n log n)",
    ),
    RegistryEntry(
        "hadamard",
        "attention",
        f"{_ATT}.lst:HadamardAttention",
        layer_configs.HadamardAttentionConfig,
        "LST attention with FWHT, O(n log n)",
    ),
    RegistryEntry(
        "mixed",
        "attention",
        f"{_ATT}.lst:MixedSpectralAttention",
        layer_configs.MixedTransformAttentionConfig,
        "FFT/DCT/FWHT heads, O(n log n)",
    ),
    RegistryEntry(
        "fnet",
        "mixing",
        f"{_MIX}.fourier:FourierMixing",
        layer_configs.FNetMixingConfig,
        "FNet 2-D Fourier mixing, O(n log n)",
    ),
    RegistryEntry(
        "global_filter",
        "mixing",
        f"{_MIX}.global_filter:GlobalFilterMixing",
        layer_configs.GlobalFilterMixingConfig,
        "GFNet global filter, O(n log n)",
    ),
]
REGISTRY: dict[str, RegistryEntry] = {entry.name: entry for entry in _ENTRIES}


def names(family: Family | None = None) -> list[str]:
    """Registered names, optionally of one family, in registry order."""
    return [e.name for e in _ENTRIES if family is None or e.family == family]


def get_entry(name: str) -> RegistryEntry:
    """Look up one entry.

    Raises:
        KeyError: with a sentence listing the valid names.
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown token mixer '{name}'; choose one of: {', '.join(names())}")
    return REGISTRY[name]


def build_layer(config: TokenMixerConfig | dict[str, Any]) -> nn.Module:
    """Build a layer from its config (or a plain dict with a ``name`` key)."""
    if isinstance(config, dict):
        if "name" in config:
            get_entry(str(config["name"]))  # clear error for an unknown name
        config = layer_configs.parse_layer_config(config)
    return get_entry(config.name).layer_class().from_config(config)
