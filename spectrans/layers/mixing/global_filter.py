r"""GFNet-style global filter over the sequence (Rao et al. 2021), per channel.

.. math::  y = \mathrm{IRFFT}_N\big(W^{(N)} \odot \mathrm{RFFT}(\tilde x)\big),
    \qquad \tilde x_j = m_j x_j,

with a learned complex filter :math:`W \in \mathbb{C}^{F \times D}`,
:math:`F = \lfloor L/2 \rfloor + 1` rFFT bins for ``L = max_sequence_length``, stored as a real
parameter ``weight`` of shape ``(F, D, 2)``. For a length ``N`` the ``N // 2 + 1`` bins get
:math:`W` linearly interpolated (real and imaginary parts) at normalised frequency
:math:`k / (N // 2)` of ``[0, 1]`` (DC to Nyquist); at ``N = L`` it is :math:`W` itself. This
is a circular convolution with a learned kernel per channel, ``O(N D log N)``, computed by
:func:`~spectrans.transforms.frequency_filter.frequency_filter` (a hand-written backward
that saves only the input).

Causal (``causal=True``): the kernel is the impulse response of the same filter at length
``2N`` (:math:`h = \mathrm{IRFFT}_{2N}(W^{(2N)})`, first ``N`` taps) and
:math:`y_i = \sum_{j \le i} h_{i-j} \odot \tilde x_j` by a zero-padded FFT of length
``>= 2N``: causal by construction.

Masking: padded positions are zeroed before the filter and the outputs there are zeroed
after it. Init (GFNet): ``weight ~ 0.02 * N(0, 1)``, a random global filter that mixes
tokens at init.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spectrans.config.layers.mixing import GlobalFilterMixingConfig
from spectrans.layers.mixing.base import MixingLayer
from spectrans.layers.spectral_filter import resample_profile
from spectrans.registry import register_mixer
from spectrans.transforms.fft import causal_conv
from spectrans.transforms.frequency_filter import frequency_filter


@register_mixer(
    "global_filter",
    GlobalFilterMixingConfig,
    family="mixing",
    complexity="O(n log n)",
    description="GFNet global filter",
    paper="Rao et al. 2021, GFNet",
)
class GlobalFilterMixing(MixingLayer):
    """Learned complex filter over the rFFT bins of the sequence, one per channel.

    Args:
        hidden_dim: Model width D (one filter per channel).
        dropout: Dropout on the output.
        causal: Causal convolution with the filter's impulse response.
        init_weights: Accepted for the contract; the filter uses GFNet's ``0.02 * N(0, 1)``.
        max_sequence_length: ``L``; the filter has ``L // 2 + 1`` bins.

    Attributes:
        weight: ``(L // 2 + 1, D, 2)`` real and imaginary parts of the filter.
    """

    supports_causal = True

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        max_sequence_length: int = 1024,
    ) -> None:
        super().__init__(hidden_dim, dropout, causal, init_weights)
        if max_sequence_length < 1:
            raise ValueError(f"max_sequence_length must be positive, got {max_sequence_length}")
        self.max_sequence_length = max_sequence_length
        bins = max_sequence_length // 2 + 1
        self.weight = nn.Parameter(torch.randn(bins, hidden_dim, 2) * 0.02)  # (F, D, 2)

    def filter_weights(self, n: int) -> Tensor:
        """Real and imaginary parts of the filter for a length-``n`` sequence, ``(n//2+1, D, 2)``.

        ``weight`` itself at ``n // 2 + 1 == L // 2 + 1`` bins, else both parts linearly
        interpolated over normalised frequency (module doc).
        """
        bins = n // 2 + 1
        if bins == self.weight.shape[0]:
            return self.weight  # (F, D, 2)
        f, d, _ = self.weight.shape
        rows = self.weight.permute(1, 2, 0).reshape(2 * d, f)  # (2D, F)
        return resample_profile(rows, bins).view(d, 2, bins).permute(2, 0, 1)  # (bins, D, 2)

    def filter_for(self, n: int, dtype: torch.dtype) -> Tensor:
        """Complex filter ``(n // 2 + 1, D)`` for a length-``n`` sequence."""
        return torch.view_as_complex(self.filter_weights(n).to(dtype).contiguous())

    def mix(self, x: Tensor) -> Tensor:
        """Filter ``x`` (B, N, D) along the sequence (causally when ``causal``)."""
        n = x.shape[1]
        if self.causal:
            taps = torch.fft.irfft(self.filter_for(2 * n, x.dtype), n=2 * n, dim=0)[:n]  # (N, D)
            return causal_conv(x, taps, dim=-2)  # (B, N, D)
        return frequency_filter(x, self.filter_weights(n))  # (B, N, D)
