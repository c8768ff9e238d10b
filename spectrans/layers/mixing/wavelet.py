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
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spectrans.config.layers.mixing import WaveletMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer
from spectrans.transforms.wavelet import max_level, wavedec, waverec


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

    def mix(self, x: Tensor) -> Tensor:
        """Per-subband gains of the DWT of ``x`` (B, N, D) along the sequence."""
        n = x.shape[1]
        signal = x.transpose(1, 2)  # (B, D, N)
        levels = min(self.levels, max_level(n, self.wavelet))
        coeffs = wavedec(signal, self.wavelet, levels, self.mode)  # [a_J, d_J, ..., d_1]
        # a_J takes gain 0; d_j (j = levels .. 1) takes gain j
        gains = [0, *range(levels, 0, -1)]
        mixed = [self._gain(c, g) for c, g in zip(coeffs, gains, strict=True)]
        return waverec(mixed, self.wavelet, self.mode, n).transpose(1, 2)  # (B, N, D)
