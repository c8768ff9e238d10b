"""Spectral transforms: DCT/DST (through FFTs), Walsh-Hadamard, FFT helpers, nn.Modules.

Pure functions live in :mod:`~spectrans.transforms.cosine`, :mod:`~spectrans.transforms.hadamard`
and :mod:`~spectrans.transforms.fft`; :mod:`~spectrans.transforms.modules` wraps them as
parameter-free modules acting along the sequence axis.
"""

from spectrans.transforms.cosine import dct, dst, idct, idst
from spectrans.transforms.fft import causal_conv, circular_conv, fourier_mix_2d
from spectrans.transforms.hadamard import fwht, next_power_of_two, sequency
from spectrans.transforms.modules import DCT, DST, FFTTransform, HadamardTransform
from spectrans.transforms.wavelet import DWT1D, WaveletTransform, dwt, idwt, wavedec, waverec

__all__ = [
    "DCT",
    "DST",
    "DWT1D",
    "WaveletTransform",
    "dwt",
    "idwt",
    "wavedec",
    "waverec",
    "FFTTransform",
    "HadamardTransform",
    "causal_conv",
    "circular_conv",
    "dct",
    "dst",
    "fourier_mix_2d",
    "fwht",
    "idct",
    "idst",
    "next_power_of_two",
    "sequency",
]
