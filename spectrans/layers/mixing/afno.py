r"""Adaptive Fourier neural operator (AFNO) token mixing (Guibas et al. 2022), 1-D.

With :math:`\tilde x_j = m_j x_j` (padding zeroed) and the orthonormal real FFT over the
sequence, :math:`X = \mathrm{RFFT}(\tilde x) \in \mathbb{C}^{(N/2+1) \times D}`, the first
``K`` modes (``modes``; all when None) go through a block-diagonal complex MLP that is shared
across modes: the channels split into ``num_blocks`` blocks of width ``b = D / num_blocks``
and, for block ``c`` and mode ``k``,

.. math::  o_1 = \mathrm{ReLU}\big(X_{k,c} W^{(1)}_c + b^{(1)}_c\big), \qquad
    o_2 = o_1 W^{(2)}_c + b^{(2)}_c, \qquad Z_{k,c} = S_\lambda(o_2),

with complex weights :math:`W^{(1)}_c \in \mathbb{C}^{b \times bf}`,
:math:`W^{(2)}_c \in \mathbb{C}^{bf \times b}` (``f = hidden_size_factor``), ReLU applied to
the real and imaginary parts separately, and :math:`S_\lambda` the soft shrinkage
:math:`\mathrm{sign}(z)\max(|z| - \lambda, 0)` (``sparsity_threshold``) on the real and
imaginary parts. Modes ``>= K`` are zero. Output :math:`y = \mathrm{IRFFT}_N(Z)` (imaginary
parts of the DC and Nyquist bins are dropped, as for any real inverse FFT). Cost
``O(N D log N + K D b f)``. Every output depends on every input: not causal.

Masking: padded positions are zeroed before the FFT and the outputs there after. Init:
weights and biases ``0.02 * N(0, 1)`` (AFNO's scale).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectrans.config.core import check_divides
from spectrans.config.layers.mixing import AFNOMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer


def _complex_linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Blockwise ``x @ w + b``: x (..., C, i) complex, w (C, i, o) complex, b (C, o) complex."""
    return torch.einsum("...ci,cio->...co", x, w) + b


@register_mixer(
    "afno",
    AFNOMixingConfig,
    family="mixing",
    complexity="O(n log n)",
    description="adaptive Fourier neural operator mixing",
    paper="Guibas et al. 2022, Adaptive Fourier neural operators",
)
class AFNOMixing(MixingLayer):
    r"""Block-diagonal complex MLP with soft shrinkage on the retained Fourier modes.

    Args:
        hidden_dim: Model width D.
        dropout: Dropout on the output.
        causal: Must be False.
        init_weights: Accepted for the contract; AFNO's ``0.02 * N(0, 1)`` is used.
        num_blocks: Channel blocks; must divide ``hidden_dim``.
        hidden_size_factor: Inner width factor of each block's MLP.
        sparsity_threshold: Soft-shrinkage threshold :math:`\lambda`.
        modes: Retained rFFT modes; None keeps all.

    Attributes:
        w1, b1, w2, b2: Real and imaginary parts stacked last: ``w1`` (C, b, b f, 2),
            ``b1`` (C, b f, 2), ``w2`` (C, b f, b, 2), ``b2`` (C, b, 2).
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        num_blocks: int = 8,
        hidden_size_factor: int = 1,
        sparsity_threshold: float = 0.01,
        modes: int | None = None,
    ) -> None:
        super().__init__(hidden_dim, dropout, causal, init_weights)
        check_divides(hidden_dim, num_blocks, "num_blocks")
        self.num_blocks, self.modes = num_blocks, modes
        self.sparsity_threshold = sparsity_threshold
        b, c = hidden_dim // num_blocks, num_blocks
        inner = b * hidden_size_factor
        self.w1 = nn.Parameter(0.02 * torch.randn(c, b, inner, 2))
        self.b1 = nn.Parameter(0.02 * torch.randn(c, inner, 2))
        self.w2 = nn.Parameter(0.02 * torch.randn(c, inner, b, 2))
        self.b2 = nn.Parameter(0.02 * torch.randn(c, b, 2))

    def mix_modes(self, spec: Tensor) -> Tensor:
        """The block MLP and shrinkage on modes ``spec`` (..., K, D) complex; same shape."""
        dtype = spec.real.dtype
        w1, b1, w2, b2 = (
            torch.view_as_complex(p.to(dtype).contiguous())
            for p in (self.w1, self.b1, self.w2, self.b2)
        )
        blocks = spec.reshape(*spec.shape[:-1], self.num_blocks, -1)  # (..., K, C, b)
        o1 = _complex_linear(blocks, w1, b1)  # (..., K, C, b f)
        o1 = torch.complex(F.relu(o1.real), F.relu(o1.imag))
        o2 = _complex_linear(o1, w2, b2)  # (..., K, C, b)
        lam = self.sparsity_threshold
        z = torch.complex(F.softshrink(o2.real, lam), F.softshrink(o2.imag, lam))
        return z.reshape(spec.shape)

    def mix(self, x: Tensor) -> Tensor:
        """AFNO mixing of ``x`` (B, N, D) over its rFFT modes."""
        n = x.shape[1]
        spec = torch.fft.rfft(x, dim=1, norm="ortho")  # (B, F, D)
        k = spec.shape[1] if self.modes is None else min(self.modes, spec.shape[1])
        mixed = self.mix_modes(spec[:, :k])  # (B, K, D)
        return torch.fft.irfft(mixed, n=n, dim=1, norm="ortho")  # (B, N, D), zero modes >= K
