r"""GFNet-style global filter over the sequence (Rao et al. 2021), per channel.

.. math::  y = \mathrm{IRFFT}_N\big(W^{(N)} \odot \mathrm{RFFT}(\tilde x)\big),
    \qquad \tilde x_j = m_j x_j,

with a learned complex filter :math:`W \in \mathbb{C}^{F \times D}`,
:math:`F = \lfloor L/2 \rfloor + 1` rFFT bins for ``L = max_sequence_length``, stored as a real
parameter ``weight`` of shape ``(F, D, 2)``. For a length ``N`` the ``N // 2 + 1`` bins get
:math:`W` linearly interpolated (real and imaginary parts) at normalised frequency
:math:`k / (N // 2)` of ``[0, 1]`` (DC to Nyquist); at ``N = L`` it is :math:`W` itself. This
is a circular convolution with a learned kernel per channel, ``O(N D log N)``.

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
from spectrans.layers.attention.base import AttentionLayer, check_input, zero_masked
from spectrans.layers.spectral_filter import resample_profile
from spectrans.registry import register_mixer
from spectrans.transforms.fft import causal_conv


@register_mixer(
    "global_filter",
    GlobalFilterMixingConfig,
    family="mixing",
    complexity="O(n log n)",
    description="GFNet global filter",
    paper="Rao et al. 2021, GFNet",
)
class GlobalFilterMixing(AttentionLayer):
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

    has_queries_keys = False
    has_scores = False
    supports_causal = True

    def __init__(
        self,
        hidden_dim: int = 512,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        max_sequence_length: int = 1024,
    ) -> None:
        super().__init__()
        self.check_options(causal=causal)
        if max_sequence_length < 1:
            raise ValueError(f"max_sequence_length must be positive, got {max_sequence_length}")
        self.hidden_dim, self.causal, self.init_weights = hidden_dim, causal, init_weights
        self.max_sequence_length = max_sequence_length
        bins = max_sequence_length // 2 + 1
        self.weight = nn.Parameter(torch.randn(bins, hidden_dim, 2) * 0.02)  # (F, D, 2)
        self.dropout = nn.Dropout(dropout)

    def filter_for(self, n: int, dtype: torch.dtype) -> Tensor:
        """Complex filter ``(n // 2 + 1, D)`` for a length-``n`` sequence."""
        w = self.weight.to(dtype)  # (F, D, 2)
        re = resample_profile(w[..., 0].T, n // 2 + 1).T  # (n//2+1, D)
        im = resample_profile(w[..., 1].T, n // 2 + 1).T
        return torch.complex(re, im)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, None]:
        """Filter ``x`` (B, N, D); returns (B, N, D), or ``(out, None)``."""
        mask = check_input(x, mask, self.hidden_dim)
        n = x.shape[1]
        compute = torch.float64 if x.dtype == torch.float64 else torch.float32
        xc = zero_masked(x, mask).to(compute)  # (B, N, D)
        if self.causal:
            taps = torch.fft.irfft(self.filter_for(2 * n, compute), n=2 * n, dim=0)[:n]  # (N, D)
            y = causal_conv(xc, taps, dim=-2)  # (B, N, D)
        else:
            spec = torch.fft.rfft(xc, dim=1) * self.filter_for(n, compute)  # (B, N//2+1, D)
            y = torch.fft.irfft(spec, n=n, dim=1)  # (B, N, D)
        out = zero_masked(self.dropout(y.to(x.dtype)), mask)  # (B, N, D)
        return (out, None) if return_attention else out
