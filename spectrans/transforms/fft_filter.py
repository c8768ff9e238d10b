r"""A two-sided real filter applied by one real FFT of the signal, with a hand-written backward.

:func:`filter_conv` computes, along the last dim of ``u`` (N samples) and a real filter ``h``
of length :math:`L \ge 2N - 1` (index :math:`t` stands for the lag :math:`t` when
:math:`t < N` and for the lag :math:`t - L` when :math:`t > L - N`),

.. math::  y_i = \sum_{j=0}^{N-1} h_{(i - j) \bmod L}\, u_j, \qquad i = 0..N-1,

the first N samples of the circular convolution of the zero-padded ``u`` with ``h``. Since
:math:`|i - j| \le N - 1 < L - (N - 1)`, no lag wraps onto another, so this is the linear
convolution with taps :math:`h_0..h_{N-1}` (causal part) plus the correlation with taps
:math:`h_{L-1}..h_{L-N+1}` (lags :math:`-1..-(N-1)`, anti-causal part). With
:math:`U = \mathrm{rfft}_L(u)`, :math:`H = \mathrm{rfft}_L(h)`:
:math:`y = \mathrm{irfft}_L(U H)_{0..N-1}`: one rfft and one irfft of the signal.

Backward (the adjoint of a circular convolution is the correlation; :math:`G =
\mathrm{rfft}_L(g)` of the zero-padded output gradient :math:`g`):

.. math::  \partial u = \mathrm{irfft}_L(G\,\bar H)_{0..N-1}, \qquad
    \partial h = \mathrm{irfft}_L\Big(\sum_b G_b\, \bar U_b\Big),

three rffts (the output gradient, and ``u`` and ``h`` again: only the real inputs are saved)
and two irffts (the second only of the small ``(..., L)`` filter shape). Writing the backward
by hand avoids autograd's rfft backward (a zero-filled full complex FFT of length L). Forward
and backward are registered as custom ops (``spectrans::filter_conv``,
``spectrans::filter_conv_backward``) with real inputs and outputs, so ``torch.compile`` sees
no complex tensor (it does not generate code for them) and fuses the neighbouring padding,
transposes and activations; the forward op returns all ``L`` samples and the narrowing to
``N`` happens outside it, where it fuses too.

Precision: float64 inputs are transformed in float64; everything else in float32 (cuFFT has no
bfloat16 transform), and ``y`` is returned in float32 (float64 for float64 inputs).
"""

from __future__ import annotations

import torch
from torch import Tensor

from spectrans.transforms.custom_ops import register_backward_op
from spectrans.transforms.precision import compute_dtype


def _sum_to(x: Tensor, shape: torch.Size) -> Tensor:
    """Sum the broadcast leading dims of ``x`` back to ``shape`` (``shape`` right-aligned)."""
    lead = x.dim() - len(shape)
    x = x.sum(tuple(range(lead))) if lead > 0 else x
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and x.shape[i] != 1)
    return x.sum(dims, keepdim=True) if dims else x


@torch.library.custom_op("spectrans::filter_conv", mutates_args=())
def _filter_conv(u: Tensor, h: Tensor) -> Tensor:
    """All ``L`` samples of the circular convolution of the zero-padded ``u`` with ``h``."""
    length = h.shape[-1]
    dt = compute_dtype(u)
    spec = torch.fft.rfft(u.to(dt), n=length) * torch.fft.rfft(h.to(dt))  # (..., L/2+1)
    return torch.fft.irfft(spec, n=length)  # (..., L)


@_filter_conv.register_fake
def _(u: Tensor, h: Tensor) -> Tensor:
    shape = torch.broadcast_shapes(u.shape[:-1], h.shape[:-1]) + (h.shape[-1],)
    return u.new_empty(shape, dtype=compute_dtype(u))


@torch.library.custom_op("spectrans::filter_conv_backward", mutates_args=())
def _filter_conv_backward(grad: Tensor, u: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
    """``(du, dh)``: the correlations of the output gradient with ``h`` and with ``u``."""
    n, length = u.shape[-1], h.shape[-1]
    dt = compute_dtype(u)
    spec_g = torch.fft.rfft(grad.to(dt))  # (..., L/2+1)
    spec_u = torch.fft.rfft(u.to(dt), n=length)  # (..., L/2+1)
    spec_h = torch.fft.rfft(h.to(dt))  # (..., L/2+1)
    back = torch.fft.irfft(spec_g * spec_h.conj(), n=length)[..., :n]  # (..., N)
    cross = _sum_to(spec_g * spec_u.conj(), h.shape[:-1] + (spec_g.shape[-1],))
    grad_u = _sum_to(back, u.shape).to(u.dtype)  # (..., N)
    grad_h = torch.fft.irfft(cross, n=length).to(h.dtype)  # (..., L)
    return grad_u.contiguous(), grad_h.contiguous()


register_backward_op(_filter_conv, _filter_conv_backward)


def filter_conv(u: Tensor, h: Tensor) -> Tensor:
    r"""Apply the two-sided real filter ``h`` (length ``L >= 2N - 1``) to ``u`` along the last dim.

    Args:
        u: ``(..., N)`` real signal.
        h: ``(..., L)`` real filter, broadcastable against ``u`` in the leading dims; lag
            :math:`t \ge 0` at index :math:`t`, lag :math:`-t` at index :math:`L - t`.

    Returns:
        ``(..., N)`` with :math:`y_i = \sum_j h_{(i-j) \bmod L} u_j`, float32 (float64 for
        float64 ``u``).
    """
    n, length = u.shape[-1], h.shape[-1]
    if length < 2 * n - 1:
        raise ValueError(f"filter length {length} is shorter than 2N - 1 = {2 * n - 1}")
    return _filter_conv(u, h)[..., :n]  # (..., N)
