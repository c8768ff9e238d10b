"""Spectral mixing layers: no queries, keys or heads (FNet, GFNet global filter)."""

from spectrans.layers.mixing.fourier import FourierMixing
from spectrans.layers.mixing.global_filter import GlobalFilterMixing

__all__ = ["FourierMixing", "GlobalFilterMixing"]
