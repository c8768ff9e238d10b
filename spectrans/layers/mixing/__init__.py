"""Mixing layers without queries, keys or heads: FNet, GFNet, AFNO, wavelet, FNO, S4D."""

from spectrans.layers.mixing.afno import AFNOMixing
from spectrans.layers.mixing.fno import FNOMixing
from spectrans.layers.mixing.fourier import FourierMixing
from spectrans.layers.mixing.global_filter import GlobalFilterMixing
from spectrans.layers.mixing.s4d import S4DMixing
from spectrans.layers.mixing.wavelet import WaveletMixing

__all__ = [
    "AFNOMixing",
    "FNOMixing",
    "FourierMixing",
    "GlobalFilterMixing",
    "S4DMixing",
    "WaveletMixing",
]
