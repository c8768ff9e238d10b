r"""Wavelet mixing: DWT over the sequence, learned per-subband gains, inverse DWT.

Per channel, with :math:`\tilde x_j = m_j x_j` (padding zeroed), the ``J``-level DWT
(:mod:`spectrans.transforms.wavelet`, boundary mode ``mode``) gives the subbands
:math:`[a_J, d_J, \dots, d_1]`; each subband ``s`` is scaled by a learned gain per channel
(``pointwise``: :math:`w_{s} \in \mathbb{R}^D`) or mixed across channels (``channel``:
:math:`W_s \in \mathbb{R}^{D \times D}`), and the inverse DWT gives the output:

.. math::  y = \mathrm{IDWT}\big(a_J W_0,\ d_J W_1,\ \dots,\ d_1 W_J\big).

With all gains 1 (the init) this is the identity (perfect reconstruction), and changing the
gain of a band changes only that scale. ``J`` is ``min(levels, max_level(N))``
(:func:`~spectrans.transforms.wavelet.max_level`) so short sequences use fewer levels; the
approximation always takes gain ``W_0`` and detail level ``j`` (1 = finest) gain ``W_j``.
Cost ``O(N D L)`` (``L`` filter taps) for ``pointwise``. Not causal (the filters and the
boundary extension look ahead). Masking: padded positions are zeroed before the DWT and the
outputs there after.

Paths (``mixing_path``): ``fast`` runs the transforms (strided convolutions of ``L`` taps per
level, ``O(N D L)``); ``gemm`` applies the same linear operators as two matrix products along
the sequence, :math:`y = R\,(G \odot A x)` with the analysis matrix ``A`` ``(C, N)`` and the
synthesis matrix ``R`` ``(N, C)`` of :func:`~spectrans.transforms.wavelet.wavelet_matrices`
(``C`` coefficients, about ``N``) and ``G`` the gain of each coefficient's band and channel:
``2 C N B D`` multiply-adds forward (as many again for the input's gradient) instead of
``O(N D L)``, on tensor cores in bfloat16 under autocast, and two GEMM launches instead of a
convolution, a gather and a crop per level and direction. ``auto`` takes ``gemm`` on CUDA
up to :data:`GEMM_MAX_LENGTH` and ``fast`` otherwise and on the CPU.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from spectrans.config.layers.mixing import WaveletMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer
from spectrans.transforms.precision import matmul_dtype
from spectrans.transforms.wavelet import (
    band_lengths,
    max_level,
    wavedec,
    wavelet_operator,
    waverec,
)

GEMM_MAX_LENGTH = 8192
"""auto: the ``gemm`` path on CUDA up to this length. The two matrices hold about ``2 N^2``
entries (256 MiB at N = 8192, built in the autocast dtype, bfloat16, under autocast and cached
per length, dtype and device), and the forward GEMMs take ``2 C N`` multiply-adds per column of
``B D`` (C about N). Measured on an H200
(bf16, batch 8, width 256, forward and backward, CUDA-graph replays,
``python -m experiments.probe_paths --tables wavelet --timing graph``, 2026-12-01): gemm
0.27 / 1.17 / 3.58 / 12.87 ms against the transforms' 1.52 / 5.56 / 11.01 / 22.25 ms at
N = 1024 / 4096 / 8192 / 16384. The bound stops at 8192 for the matrices' memory (1 GiB at
16384), not for speed."""


@register_mixer(
    "wavelet",
    WaveletMixingConfig,
    family="mixing",
    complexity="O(n)",
    description="DWT, learned per-subband gains, inverse DWT",
    paper="Mallat 1989; Daubechies 1992 (DWT); spectrans WaveletMixing",
)
class WaveletMixing(MixingLayer):
    """Learned gains on the subbands of a multi-level DWT along the sequence.

    Args:
        hidden_dim: Model width D.
        dropout: Dropout on the output.
        causal: Must be False.
        init_weights: Accepted for the contract; the gains start at 1 (identity).
        wavelet: ``haar`` or ``db1``..``db8``.
        levels: Decomposition levels ``J``.
        mode: ``symmetric`` or ``periodic`` boundary handling.
        mixing_mode: ``pointwise`` (``weight`` (J+1, D)) or ``channel`` (``weight``
            (J+1, D, D), identity init).
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        wavelet: str = "db4",
        levels: int = 3,
        mode: str = "symmetric",
        mixing_mode: str = "pointwise",
    ) -> None:
        super().__init__(hidden_dim, dropout, causal, init_weights)
        if levels < 1:
            raise ValueError(f"levels must be positive, got {levels}")
        if mixing_mode not in ("pointwise", "channel"):
            raise ValueError(f"mixing_mode must be 'pointwise' or 'channel', got {mixing_mode!r}")
        wavedec(torch.zeros(1, 1), wavelet, 0, mode)  # one-sentence error for a bad name/mode
        self.wavelet, self.levels, self.mode, self.mixing_mode = wavelet, levels, mode, mixing_mode
        if mixing_mode == "pointwise":
            self.weight = nn.Parameter(torch.ones(levels + 1, hidden_dim))  # (J+1, D)
        else:
            eye = torch.eye(hidden_dim).expand(levels + 1, hidden_dim, hidden_dim)
            self.weight = nn.Parameter(eye.clone())  # (J+1, D, D)

    def _gain(self, band: Tensor, index: int) -> Tensor:
        """Apply subband gain ``index`` to ``band`` (B, D, K) along the channels."""
        w = self.weight[index].to(band.dtype)
        if self.mixing_mode == "pointwise":
            return band * w[None, :, None]  # (B, D, K)
        return torch.einsum("bdk,de->bek", band, w)  # (B, D, K)

    def _band_gains(self, n: int) -> tuple[int, list[int]]:
        """Levels used for ``n`` samples and the gain row of each band ``[a_J, d_J, ..., d_1]``.

        ``a_J`` takes gain 0 and ``d_j`` (j = J .. 1) gain j.
        """
        levels = min(self.levels, max_level(n, self.wavelet))
        return levels, [0, *range(levels, 0, -1)]

    mixing_path: Literal["auto", "fast", "gemm"] = "auto"

    def chosen_path(self, n: int, device: torch.device) -> str:
        """``fast`` or ``gemm`` for length ``n`` on ``device`` (module doc)."""
        if self.mixing_path != "auto":
            return self.mixing_path
        return "gemm" if device.type == "cuda" and n <= GEMM_MAX_LENGTH else "fast"

    def mix(self, x: Tensor) -> Tensor:
        """Per-subband gains of the DWT of ``x`` (B, N, D) along the sequence."""
        if self.chosen_path(x.shape[1], x.device) == "gemm":
            return self.mix_gemm(x)
        return self.mix_fast(x)

    def mix_gemm(self, x: Tensor) -> Tensor:
        r""":math:`R\,(G \odot A x)` along the sequence of ``x`` (B, N, D), as two GEMMs."""
        b, n, d = x.shape
        levels, gains = self._band_gains(n)
        analysis, synthesis = wavelet_operator(
            n, self.wavelet, levels, self.mode, matmul_dtype(x), x.device
        )  # (C, N), (N, C), in the autocast dtype under autocast
        sizes = band_lengths(n, self.wavelet, levels, self.mode)  # [a_J, d_J, ..., d_1]
        cols = x.transpose(0, 1).reshape(n, b * d)  # (N, B*D)
        coef = (analysis @ cols).view(-1, b, d)  # (C, B, D)
        if self.mixing_mode == "pointwise":
            per_coef = torch.cat(
                [self.weight[g].expand(k, d) for k, g in zip(sizes, gains, strict=True)]
            )  # (C, D): the gains of each coefficient's band
            mixed = coef * per_coef.to(coef.dtype)[:, None, :]  # (C, B, D)
        else:
            parts = torch.split(coef, sizes, dim=0)  # each (K_s, B, D)
            mixed = torch.cat(
                [p @ self.weight[g].to(p.dtype) for p, g in zip(parts, gains, strict=True)]
            )  # (C, B, D)
        out = synthesis @ mixed.reshape(-1, b * d)  # (N, B*D)
        return out.view(n, b, d).transpose(0, 1)  # (B, N, D)

    def mix_fast(self, x: Tensor) -> Tensor:
        """Per-subband gains of the DWT of ``x`` (B, N, D), by the transforms."""
        n = x.shape[1]
        signal = x.transpose(1, 2)  # (B, D, N)
        levels, gains = self._band_gains(n)
        coeffs = wavedec(signal, self.wavelet, levels, self.mode)  # [a_J, d_J, ..., d_1]
        mixed = [self._gain(c, g) for c, g in zip(coeffs, gains, strict=True)]
        return waverec(mixed, self.wavelet, self.mode, n).transpose(1, 2)  # (B, N, D)
