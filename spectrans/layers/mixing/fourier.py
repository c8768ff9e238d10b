r"""FNet Fourier mixing (Lee-Thorp et al. 2022).

.. math::  y = \mathrm{Re}\big(\mathrm{FFT}_{seq}(\mathrm{FFT}_{hidden}(\tilde x))\big),
    \qquad \tilde x_j = m_j x_j,

with :math:`m_j \in \{0, 1\}` the mask: padded positions are zeroed before the FFT (so they
cannot reach any output) and the outputs at padded positions are zeroed after it. No
parameters; ``O(N D log(N D))``. Every output depends on every input, so ``causal=True`` is
refused.
"""

from __future__ import annotations

from torch import Tensor, nn

from spectrans.config.layers.mixing import FNetMixingConfig
from spectrans.layers.attention.base import AttentionLayer, check_input, zero_masked
from spectrans.registry import register_mixer
from spectrans.transforms.fft import fourier_mix_2d


@register_mixer(
    "fnet",
    FNetMixingConfig,
    family="mixing",
    complexity="O(n log n)",
    description="FNet 2-D Fourier mixing",
    paper="Lee-Thorp et al. 2022, FNet",
)
class FourierMixing(AttentionLayer):
    """FNet token mixing: real part of the 2-D FFT over (sequence, hidden).

    Args:
        hidden_dim: Model width D (kept for the contract; FNet has no weights).
        dropout: Dropout on the output.
        causal: Must be False (FNet mixes the whole sequence).
        init_weights: Accepted for the contract; there are no weights.
    """

    has_queries_keys = False
    has_scores = False
    supports_causal = False

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
    ) -> None:
        super().__init__()
        self.check_options(causal=causal)
        self.hidden_dim, self.causal, self.init_weights = hidden_dim, causal, init_weights
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, None]:
        """Mix ``x`` (B, N, D); returns (B, N, D), or ``(out, None)``."""
        mask = check_input(x, mask, self.hidden_dim)
        y = fourier_mix_2d(zero_masked(x, mask))  # (B, N, D)
        out = zero_masked(self.dropout(y), mask)  # (B, N, D)
        return (out, None) if return_attention else out
