r"""A learned complex gain per rFFT bin and channel, with a hand-written backward.

:func:`frequency_filter` computes, along dim -2 of ``x`` (``N`` samples, ``C`` channels) and a
complex filter :math:`W \in \mathbb{C}^{K \times C}`, :math:`K = \lfloor N/2 \rfloor + 1`,

.. math::  y = \mathrm{IRFFT}_N\big(W \odot X\big), \qquad X = \mathrm{RFFT}_N(x),

the circular convolution of each channel with the real kernel :math:`h = \mathrm{IRFFT}_N(W)`
(the imaginary parts of the DC bin, and of the Nyquist bin for even ``N``, do not reach ``y``,
as in ``torch.fft.irfft``).

Backward, with :math:`G = \mathrm{RFFT}_N(\partial y)` and :math:`c_k = 1` on the bins without
a mirror image (DC; Nyquist for even N), :math:`c_k = 2` on the others (they stand for two
bins of the full spectrum):

.. math::  \partial x = \mathrm{IRFFT}_N\big(G \odot \overline{W}\big), \qquad
    \partial W = \frac{c_k}{N} \sum_{b} G \odot \overline{X},

in PyTorch's convention for complex gradients (:math:`\partial L / \partial \mathrm{Re} +
i\, \partial L / \partial \mathrm{Im}`). The first is the adjoint of the circular convolution
(the correlation with :math:`h`); the second follows from :math:`\partial y_n / \partial
\mathrm{Re} Z_k = (c_k / N) \cos(2\pi kn/N)` and :math:`\partial y_n / \partial \mathrm{Im} Z_k
= -(c_k/N) \sin(2\pi kn/N)` for :math:`Z = W \odot X`. Three real FFTs and one inverse in the
backward, against autograd's, which differentiates ``rfft`` by a zero-filled complex FFT and
saves the complex spectrum; here only ``x`` (real, in its own dtype) is saved.

Forward and backward are custom ops (``spectrans::frequency_filter``,
``spectrans::frequency_filter_backward``) with real inputs and outputs (the filter as its real
and imaginary parts, ``(K, C, 2)``), so ``torch.compile`` sees no complex tensor and fuses
around them. Half-precision inputs are transformed in float32; ``y`` is float32 (float64 for
float64 ``x``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from spectrans.transforms.custom_ops import register_backward_op
from spectrans.transforms.precision import compute_dtype


def _complex(w: Tensor, dtype: torch.dtype) -> Tensor:
    """``(K, C, 2)`` real and imaginary parts as a complex ``(K, C)`` tensor in ``dtype``."""
    return torch.view_as_complex(w.to(dtype).contiguous())  # (K, C)


def _bin_weights(n: int, bins: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``c_k / N`` for the ``bins`` rFFT bins of a length-``n`` signal, ``(K, 1)``.

    Built on every call, not cached: it runs inside a custom op, which CUDA graphs record, and
    a tensor cached on first use there would stay in the graph's private memory pool.
    """
    weights = torch.full((bins, 1), 2.0 / n, dtype=dtype, device=device)  # (K, 1)
    weights[0].fill_(1.0 / n)
    if n % 2 == 0 and bins > 1:
        weights[-1].fill_(1.0 / n)
    return weights


@torch.library.custom_op("spectrans::frequency_filter", mutates_args=())
def _frequency_filter(x: Tensor, w: Tensor) -> Tensor:
    """``IRFFT(W * RFFT(x))`` along dim -2."""
    n, dt = x.shape[-2], compute_dtype(x)
    spec = torch.fft.rfft(x.to(dt), dim=-2) * _complex(w, dt)  # (..., K, C)
    return torch.fft.irfft(spec, n=n, dim=-2).contiguous()  # (..., N, C)


@_frequency_filter.register_fake
def _(x: Tensor, w: Tensor) -> Tensor:
    return x.new_empty(x.shape, dtype=compute_dtype(x))


@torch.library.custom_op("spectrans::frequency_filter_backward", mutates_args=())
def _frequency_filter_backward(grad: Tensor, x: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """``(dx, dw)`` of :func:`frequency_filter` (module doc)."""
    n, dt = x.shape[-2], compute_dtype(x)
    spec_g = torch.fft.rfft(grad.to(dt), dim=-2)  # (..., K, C)
    filt = _complex(w, dt)  # (K, C)
    grad_x = torch.fft.irfft(spec_g * filt.conj(), n=n, dim=-2)  # (..., N, C)
    cross = spec_g * torch.fft.rfft(x.to(dt), dim=-2).conj()  # (..., K, C)
    cross = cross.reshape(-1, *cross.shape[-2:]).sum(0)  # (K, C)
    grad_w = torch.view_as_real(cross * _bin_weights(n, cross.shape[0], dt, x.device))
    return grad_x.to(x.dtype).contiguous(), grad_w.to(w.dtype).contiguous()


register_backward_op(_frequency_filter, _frequency_filter_backward)


def frequency_filter(x: Tensor, w: Tensor) -> Tensor:
    r"""Multiply the rFFT of ``x`` along dim -2 by a complex gain per bin and channel.

    Args:
        x: ``(..., N, C)`` real signal.
        w: ``(N // 2 + 1, C, 2)`` real and imaginary parts of the gains :math:`W`.

    Returns:
        ``(..., N, C)``: :math:`\mathrm{IRFFT}_N(W \odot \mathrm{RFFT}_N(x))`, float32
        (float64 for float64 ``x``).
    """
    bins = x.shape[-2] // 2 + 1
    if w.dim() != 3 or w.shape[0] != bins or w.shape[-1] != 2 or w.shape[1] != x.shape[-1]:
        raise ValueError(
            f"filter of shape {tuple(w.shape)} does not fit a signal of shape "
            f"{tuple(x.shape)}: expected ({bins}, {x.shape[-1]}, 2)"
        )
    return _frequency_filter(x, w)
