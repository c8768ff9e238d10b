"""Core spectral transforms in one namespace: functions and sequence-axis modules.

Re-exports :mod:`~spectrans.transforms.cosine` (DCT/DST), :mod:`~spectrans.transforms.fft`,
:mod:`~spectrans.transforms.hadamard`, :mod:`~spectrans.transforms.wavelet` and
:mod:`~spectrans.transforms.modules`.
"""

from spectrans.transforms.cosine import dct, dst, idct, idst
from spectrans.transforms.fft import causal_conv, circular_conv, fourier_mix_2d
from spectrans.transforms.hadamard import fwht, next_power_of_two, sequency
from spectrans.transforms.modules import DCT, DST, FFTTransform, HadamardTransform
from spectrans.transforms.wavelet import (
    DWT1D,
    WaveletTransform,
    dwt,
    filter_bank,
    idwt,
    wavedec,
    waverec,
)

__all__ = [
    "DCT",
    "DST",
    "DWT1D",
    "FFTTransform",
    "HadamardTransform",
    "WaveletTransform",
    "causal_conv",
    "circular_conv",
    "dct",
    "dst",
    "dwt",
    "filter_bank",
    "fourier_mix_2d",
    "fwht",
    "idct",
    "idst",
    "idwt",
    "next_power_of_two",
    "sequency",
    "wavedec",
    "waverec",
]
