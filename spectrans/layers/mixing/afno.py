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

Paths (``mixing_path``), the same function computed two ways in real arithmetic: ``blocks``
(one small real matrix per block, :func:`_real_form`, applied by batched products) and
``dense`` (:func:`_dense_form`: the block-diagonal ``(2D, 2Df)`` and ``(2Df, 2D)`` real
matrices applied to the spectrum's interleaved ``[re, im]`` channels as two plain GEMMs; no
copy to a per-block layout, ``num_blocks`` times the multiply-adds). ``auto`` takes ``dense``
on CUDA for widths up to :data:`DENSE_MAX_WIDTH`, else ``blocks``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectrans.config.core import check_divides
from spectrans.config.layers.mixing import AFNOMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer

DENSE_MAX_WIDTH: int | None = 32
"""auto: the ``dense`` path on CUDA for widths D up to this; None: never (``blocks`` always).

Measured on an H200 in bf16, training steps compiled with CUDA graphs
(``python -m experiments.bench_step --tasks pathfinder --mixers afno --compile all
--mixing-path auto,dense``, ``results/train_step.md``, 2026-12-01 17:15 UTC): at the
Pathfinder-32 width D = 32 ``dense`` takes the step from 18.47 to 9.99 ms. Wider layers are
not timed, so they keep ``blocks``: a GEMM with a ``(2D, 2D)`` matrix reads and writes ``4D``
values per row for ``8 D^2`` flops, memory-bound at small D, where the block structure's
saving in multiply-adds buys little; at the ListOps width (D = 512, 8 blocks) ``dense`` does
eight times the multiply-adds."""


def _real_form(w: Tensor) -> Tensor:
    r"""The real matrix of a blockwise complex weight, ``w`` (C, i, o, 2) -> (C, 2i, 2o).

    With :math:`W = W_r + i W_i` and a complex row vector :math:`x = x_r + i x_i` stored as
    :math:`[x_r, x_i]`, :math:`xW = (x_r W_r - x_i W_i) + i(x_r W_i + x_i W_r)`, which is
    :math:`[x_r, x_i] \begin{bmatrix} W_r & W_i \\ -W_i & W_r \end{bmatrix}`.
    """
    wr, wi = w.unbind(-1)  # (C, i, o) each
    top = torch.cat([wr, wi], dim=-1)  # (C, i, 2o)
    bottom = torch.cat([-wi, wr], dim=-1)  # (C, i, 2o)
    return torch.cat([top, bottom], dim=-2)  # (C, 2i, 2o)


def _dense_form(w: Tensor) -> Tensor:
    r"""The block-diagonal real matrix of ``w`` (C, i, o, 2) on interleaved channels: (2Ci, 2Co).

    Rows index the input as ``2 (c i + l) + p`` and columns the output as ``2 (c o + q) + p'``
    (``p, p'`` = 0 real, 1 imaginary): the layout of ``torch.view_as_real`` flattened, so the
    spectrum's channels go in and come out without a copy. Block ``c`` is :func:`_real_form`
    of ``w[c]`` with its rows and columns reordered from ``[re..., im...]`` to interleaved.
    """
    c, i, o, _ = w.shape
    real = _real_form(w)  # (C, 2i, 2o): rows p*i + l, columns p'*o + q
    real = real.view(c, 2, i, 2, o).permute(0, 2, 1, 4, 3).reshape(c, 2 * i, 2 * o)  # interleaved
    return torch.block_diag(*real.unbind(0))  # (2Ci, 2Co)


def _real_bias(b: Tensor) -> Tensor:
    """A complex bias ``b`` (C, o, 2) stored as ``[b_r, b_i]``: (C, 2o)."""
    return b.transpose(-1, -2).flatten(-2)  # (C, 2o)


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

    mixing_path: Literal["auto", "blocks", "dense"] = "auto"

    def chosen_path(self, n: int, device: torch.device) -> str:
        """``blocks`` or ``dense`` on ``device`` (module doc; the length does not matter)."""
        if self.mixing_path != "auto":
            return self.mixing_path
        small = DENSE_MAX_WIDTH is not None and self.hidden_dim <= DENSE_MAX_WIDTH
        return "dense" if device.type == "cuda" and small else "blocks"

    def mix_modes_dense(self, spec: Tensor, bins: int | None = None) -> Tensor:
        """:meth:`mix_modes` as two GEMMs with the block-diagonal matrices (:func:`_dense_form`).

        Returns:
            ``(..., bins, D)`` complex.
        """
        dtype = spec.real.dtype
        w1, w2 = (_dense_form(p.to(dtype)) for p in (self.w1, self.w2))  # (2D, 2Df), (2Df, 2D)
        b1, b2 = (p.to(dtype).flatten() for p in (self.b1, self.b2))  # interleaved (2Df,), (2D,)
        x = torch.view_as_real(spec).flatten(-2)  # (..., K, 2D): [re, im] per channel
        o1 = F.relu(torch.matmul(x, w1) + b1)  # (..., K, 2Df)
        z = F.softshrink(torch.matmul(o1, w2) + b2, self.sparsity_threshold)  # (..., K, 2D)
        k = spec.shape[-2]
        z = F.pad(z, (0, 0, 0, (bins or k) - k))  # (..., bins, 2D), zero modes >= K
        return torch.view_as_complex(z.unflatten(-1, (-1, 2)).contiguous())  # (..., bins, D)

    def mix_modes(self, spec: Tensor, bins: int | None = None) -> Tensor:
        """The block MLP and shrinkage on modes ``spec`` (..., K, D) complex.

        Computed in real arithmetic on ``[real, imag]`` halves (:func:`_real_form`), and the
        result is zero-padded to ``bins`` modes (default K) before it is viewed as complex:
        complex values exist only at the FFTs' input and output, so a compiled graph has no
        kernel over complex elements.

        Returns:
            ``(..., bins, D)`` complex.
        """
        dtype = spec.real.dtype
        w1, w2 = (_real_form(p.to(dtype)) for p in (self.w1, self.w2))  # (C, 2i, 2o)
        b1, b2 = (_real_bias(p.to(dtype)) for p in (self.b1, self.b2))  # (C, 2o)
        parts = torch.view_as_real(spec)  # (..., K, D, 2)
        parts = parts.reshape(*spec.shape[:-1], self.num_blocks, -1, 2)  # (..., K, C, b, 2)
        x = parts.transpose(-1, -2).flatten(-2)  # (..., K, C, 2b): [real, imag]
        o1 = F.relu(torch.einsum("...ci,cio->...co", x, w1) + b1)  # (..., K, C, 2bf)
        o2 = torch.einsum("...ci,cio->...co", o1, w2) + b2  # (..., K, C, 2b)
        z = F.softshrink(o2, self.sparsity_threshold)  # on real and imaginary parts alike
        z = z.unflatten(-1, (2, -1)).transpose(-1, -2).flatten(-3, -2)  # (..., K, D, 2)
        k = spec.shape[-2]
        z = F.pad(z, (0, 0, 0, 0, 0, (bins or k) - k))  # (..., bins, D, 2), zero modes >= K
        return torch.view_as_complex(z.contiguous())  # (..., bins, D)

    def mix(self, x: Tensor) -> Tensor:
        """AFNO mixing of ``x`` (B, N, D) over its rFFT modes."""
        n = x.shape[1]
        spec = torch.fft.rfft(x, dim=1, norm="ortho")  # (B, F, D)
        k = spec.shape[1] if self.modes is None else min(self.modes, spec.shape[1])
        dense = self.chosen_path(n, x.device) == "dense"
        modes = self.mix_modes_dense if dense else self.mix_modes
        mixed = modes(spec[:, :k], bins=spec.shape[1])  # (B, F, D), zero modes >= K
        return torch.fft.irfft(mixed, n=n, dim=1, norm="ortho")  # (B, N, D)
