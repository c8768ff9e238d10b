"""Configuration models for spectral mixing layers (FNet, global filter).

Mixing layers have no queries, keys or heads; they share :class:`TokenMixerConfig`'s fields.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from spectrans.config.core import TokenMixerConfig


class FNetMixingConfig(TokenMixerConfig):
    """FNet Fourier mixing: ``Re(FFT_seq(FFT_hidden(x)))``; no parameters.

    FNet cannot be causal (every output sees every input); ``causal=True`` is refused by the
    layer.
    """

    name: Literal["fnet"] = "fnet"


class GlobalFilterMixingConfig(TokenMixerConfig):
    """GFNet-style learned global filter over the sequence.

    Attributes:
        max_sequence_length: Length the learned frequency filter is built for.
    """

    name: Literal["global_filter"] = "global_filter"
    max_sequence_length: int = Field(1024, gt=0)
