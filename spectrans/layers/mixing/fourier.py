r"""FNet Fourier mixing (Lee-Thorp et al. 2022).

.. math::  y = \mathrm{Re}\big(\mathrm{FFT}_{seq}(\mathrm{FFT}_{hidden}(\tilde x))\big),
    \qquad \tilde x_j = m_j x_j,

with :math:`m_j \in \{0, 1\}` the mask: padded positions are zeroed before the FFT (so they
cannot reach any output) and the outputs at padded positions are zeroed after it. No
parameters; ``O(N D log(N D))``. Every output depends on every input, so ``causal=True`` is
refused.
"""

from __future__ import annotations

from torch import Tensor

from spectrans.config.layers.mixing import FNetMixingConfig
from spectrans.layers.mixing.base import MixingLayer
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
class FourierMixing(MixingLayer):
    """FNet token mixing: real part of the 2-D FFT over (sequence, hidden).

    Args:
        hidden_dim: Model width D (kept for the contract; FNet has no weights).
        dropout: Dropout on the output.
        causal: Must be False (FNet mixes the whole sequence).
        init_weights: Accepted for the contract; there are no weights.
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
    ) -> None:
        super().__init__(hidden_dim, dropout, causal, init_weights)

    def mix(self, x: Tensor) -> Tensor:
        """``Re FFT2(x)`` over (sequence, hidden): (B, N, D) -> (B, N, D)."""
        return fourier_mix_2d(x)
