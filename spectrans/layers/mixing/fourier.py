r"""FNet Fourier mixing (Lee-Thorp et al. 2022).

.. math::  y = \mathrm{Re}\big(\mathrm{FFT}_{seq}(\mathrm{FFT}_{hidden}(\tilde x))\big),
    \qquad \tilde x_j = m_j x_j,

with :math:`m_j \in \{0, 1\}` the mask: padded positions are zeroed before the FFT (so they
cannot reach any output) and the outputs at padded positions are zeroed after it. No
parameters; ``O(N D log(N D))``. Every output depends on every input, so ``causal=True`` is
refused.

Paths (``mixing_path``): ``fft`` (:func:`~spectrans.transforms.fft.fourier_mix_2d`, in
float32) or ``factored`` (:func:`~spectrans.transforms.factored.fnet_fourstep`: the hidden DFT
as one GEMM and the sequence DFT by the four-step method as small GEMMs, in bfloat16 under
autocast, ``O(N D (D + sqrt N))``; a prime ``N`` takes ``fft``). ``auto`` is ``fft`` unless
:data:`FACTORED_MIN_LENGTH` is set and a CUDA input is at least that long.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from spectrans.config.layers.mixing import FNetMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.registry import register_mixer
from spectrans.transforms.factored import fnet_fourstep, fourstep_split
from spectrans.transforms.fft import fourier_mix_2d

FACTORED_MIN_LENGTH: int | None = None
"""auto: the factored path on CUDA from this length on; None: never (``fft`` always).

None as measured on an H200 in bf16 (``results/paths_probe.md``, forward+backward of one
layer): cuFFT beats the four-step GEMMs at every length probed, 1024 to 65536, by 3-4x
(1.91 ms against 6.27 ms at the ListOps shape (32, 2000, 512))."""


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

    mixing_path: Literal["auto", "fft", "factored"] = "auto"

    def chosen_path(self, n: int, device: torch.device) -> str:
        """``fft`` or ``factored`` for length ``n`` on ``device`` (module doc)."""
        if fourstep_split(n)[0] == 1:
            return "fft"
        if self.mixing_path != "auto":
            return self.mixing_path
        long = FACTORED_MIN_LENGTH is not None and n >= FACTORED_MIN_LENGTH
        return "factored" if device.type == "cuda" and long else "fft"

    def mix(self, x: Tensor) -> Tensor:
        """``Re FFT2(x)`` over (sequence, hidden): (B, N, D) -> (B, N, D)."""
        if self.chosen_path(x.shape[1], x.device) == "factored":
            return fnet_fourstep(x)
        return fourier_mix_2d(x)
