r"""FFT helpers: FNet's 2-D Fourier mixing and circular / causal convolution via the rFFT.

- :func:`fourier_mix_2d`: :math:`y = \mathrm{Re}(\mathrm{FFT}_{seq}(\mathrm{FFT}_{hidden}(x)))`
  (FNet, Lee-Thorp et al. 2022) for ``x`` of shape ``(..., N, D)``.
- :func:`circular_conv`: :math:`y_i = \sum_{j} h_{(i-j) \bmod N}\, x_j` through one rFFT of
  length ``N``.
- :func:`causal_conv`: :math:`y_i = \sum_{j \le i} h_{i-j}\, x_j` (linear, not circular),
  through rFFTs zero-padded to a length ``L >= 2N`` so that no wrap-around can reach
  :math:`y_i` from :math:`x_{j > i}`; cost ``O(N log N)``.

Half and bfloat16 inputs are computed in float32 and cast back.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spectrans.transforms.precision import compute_dtype


def fft_length(n: int) -> int:
    """A fast FFT length ``>= 2n`` for zero-padded linear convolution (next power of two)."""
    return 1 << (2 * n - 1).bit_length()


def fourier_mix_2d(x: Tensor) -> Tensor:
    """FNet mixing: real part of the 2-D FFT over the last two dims (sequence, hidden).

    Args:
        x: ``(..., N, D)`` real tensor.

    Returns:
        ``(..., N, D)`` tensor, same dtype.
    """
    y = torch.fft.fft2(x.to(compute_dtype(x)), dim=(-2, -1)).real  # (..., N, D)
    return y.to(x.dtype)


def circular_conv(x: Tensor, h: Tensor, dim: int = -2) -> Tensor:
    """Circular convolution of ``x`` with kernel ``h`` along ``dim`` (both of length N there).

    ``h`` must broadcast against ``x`` (e.g. ``x`` (B, H, N, d) and ``h`` (H, N, 1)).
    """
    n = x.shape[dim]
    dt = compute_dtype(x)
    spec = torch.fft.rfft(x.to(dt), dim=dim) * torch.fft.rfft(h.to(dt), dim=dim)
    return torch.fft.irfft(spec, n=n, dim=dim).to(x.dtype)


def causal_conv(x: Tensor, h: Tensor, dim: int = -2, exact: bool = True) -> Tensor:
    """Causal linear convolution ``y_i = sum_{j<=i} h_{i-j} x_j`` along ``dim``.

    Args:
        x: Signal with N samples along ``dim``.
        h: Kernel with at most N samples along ``dim`` (taps ``h_0, h_1, ...``), broadcastable
            against ``x`` in the other dims.
        dim: The time axis (negative index recommended so broadcasting lines up).
        exact: Compute the FFTs in float64 whatever the input dtype. An FFT mixes every
            sample into every bin, so in float32 the future inputs leak into past outputs at
            rounding level (about 1e-7 times their magnitude); float64 pushes that below
            1e-15 so causality holds to float32 precision for any input scale.

    Returns:
        ``y`` with the shape of ``x`` (broadcast), N samples along ``dim``.
    """
    n = x.shape[dim]
    length = fft_length(n)  # >= 2N: zero padding makes the circular product linear
    dt = torch.float64 if exact else compute_dtype(x)
    spec = torch.fft.rfft(x.to(dt), n=length, dim=dim) * torch.fft.rfft(h.to(dt), n=length, dim=dim)
    return torch.fft.irfft(spec, n=length, dim=dim).narrow(dim, 0, n).to(x.dtype)
