r"""Fourier neural operator spectral convolution over the sequence (Li et al. 2021), 1-D.

With :math:`\tilde x_j = m_j x_j` (padding zeroed) and the orthonormal real FFT
:math:`X_k = N^{-1/2} \sum_n \tilde x_n e^{-2\pi i k n / N}`, each of the first ``K`` modes
(``modes``, at most ``N // 2 + 1``) is multiplied by its own complex channel-mixing matrix
:math:`R_k \in \mathbb{C}^{D \times D}` and the rest are dropped:

.. math::  Y_k = X_k R_k \ (k < K), \qquad Y_k = 0 \ (k \ge K), \qquad
    y = \mathrm{IRFFT}_N(Y),

i.e. :math:`y_n = N^{-1/2} \sum_{k<K} c_k \mathrm{Re}(Y_k e^{2\pi i k n / N})` with
:math:`c_0 = 1`, :math:`c_{N/2} = 1` (even ``N``) and :math:`c_k = 2` otherwise. Cost
``O(N D log N + K D^2)``; a global operator, not causal. Masking: padded positions are zeroed
before the FFT and the outputs there after. Init: :math:`R_k` entries complex normal with
variance ``1 / D`` (unit gain per retained mode).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from spectrans.config.layers.mixing import FNOMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer


@register_mixer(
    "fno",
    FNOMixingConfig,
    family="mixing",
    complexity="O(n log n)",
    description="Fourier neural operator spectral convolution",
    paper="Li et al. 2021, Fourier neural operator",
)
class FNOMixing(MixingLayer):
    """Spectral convolution: a complex ``D x D`` weight on each of the lowest ``modes`` modes.

    Args:
        hidden_dim: Model width D.
        dropout: Dropout on the output.
        causal: Must be False.
        init_weights: Accepted for the contract; the weights are complex normal, variance 1/D.
        modes: Retained modes ``K``.

    Attributes:
        weight: ``(K, D, D, 2)`` real and imaginary parts of :math:`R_k`.
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        modes: int = 16,
    ) -> None:
        super().__init__(hidden_dim, dropout, causal, init_weights)
        if modes < 1:
            raise ValueError(f"modes must be positive, got {modes}")
        self.modes = modes
        std = 1.0 / math.sqrt(2 * hidden_dim)  # each of re, im: total variance 1/D
        self.weight = nn.Parameter(std * torch.randn(modes, hidden_dim, hidden_dim, 2))

    def mix(self, x: Tensor) -> Tensor:
        """Spectral convolution of ``x`` (B, N, D) on the lowest ``modes`` modes."""
        n = x.shape[1]
        spec = torch.fft.rfft(x, dim=1, norm="ortho")  # (B, F, D)
        k = min(self.modes, spec.shape[1])
        weight = torch.view_as_complex(self.weight[:k].to(x.dtype).contiguous())  # (K, D, D)
        mixed = torch.einsum("bki,kio->bko", spec[:, :k], weight)  # (B, K, D)
        return torch.fft.irfft(mixed, n=n, dim=1, norm="ortho")  # (B, N, D)
