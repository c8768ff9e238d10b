r"""FFT helpers: FNet's 2-D Fourier mixing and circular / causal convolution via the rFFT.

- :func:`fourier_mix_2d`: :math:`y = \mathrm{Re}(\mathrm{FFT}_{seq}(\mathrm{FFT}_{hidden}(x)))`
  (FNet, Lee-Thorp et al. 2022) for ``x`` of shape ``(..., N, D)``. With :math:`F = C - iS`
  the DFT matrices (:math:`C_{jk} = \cos(2\pi jk/n)`, :math:`S_{jk} = \sin(2\pi jk/n)`, both
  symmetric), :math:`y = C_N x C_D - S_N x S_D`: a real linear map equal to its own adjoint,
  so the gradient is :math:`\partial x = \mathrm{Re}(\mathrm{FFT2}(\partial y))` and nothing is
  saved for the backward. The 2-D spectrum of a real signal is Hermitian,
  :math:`Y_{n,m} = \overline{Y_{-n,-m}}` (indices mod N and D), so from
  :data:`HALF_SPECTRUM_MIN_WIDTH` channels on only the half spectrum
  :math:`m \le D/2` is computed (``rfft2``: a real FFT along the hidden dim, then a complex
  FFT along the sequence over ``D // 2 + 1`` columns instead of ``D``) and the other columns
  are read off it: :math:`\mathrm{Re}\,Y_{n,m} = \mathrm{Re}\,Y_{(-n) \bmod N,\,D-m}`.
- :func:`circular_conv`: :math:`y_i = \sum_{j} h_{(i-j) \bmod N}\, x_j` through one rFFT of
  length ``N``.
- :func:`causal_conv`: :math:`y_i = \sum_{j \le i} h_{i-j}\, x_j` (linear, not circular),
  through rFFTs zero-padded to a length ``L >= 2N`` so that no wrap-around can reach
  :math:`y_i` from :math:`x_{j > i}`; cost ``O(N log N)``.
- :func:`rfft_lean`: ``torch.fft.rfft`` along one dim whose backward keeps no copy of the
  input. Autograd's rfft saves its input for the backward (only its length is needed); for
  ``X_k = s \sum_{n<N} x_n e^{-2\pi i k n / L}``, ``k = 0..\lfloor L/2 \rfloor`` (input
  zero-padded to ``L >= N``, ``s`` the norm's scale), the gradient under PyTorch's convention
  for real inputs is :math:`\partial x_n = s\,\mathrm{Re}\sum_k G_k e^{2\pi i k n / L}`,
  which is ``s L irfft(G')`` with :math:`G'_k = G_k / 2` on the bins that have a mirror image
  (``0 < k < L/2``) and :math:`G'_k = G_k` on the others (irfft counts a mirrored bin twice),
  cropped to the first ``N`` samples.

Half and bfloat16 inputs are computed in float32 and cast back.
"""

from __future__ import annotations

import torch
from torch import Tensor

from spectrans.transforms.precision import compute_dtype


class _LeanRFFT(torch.autograd.Function):
    """``torch.fft.rfft(x, n, dim, norm)`` whose backward needs only the lengths."""

    @staticmethod
    def forward(ctx, x: Tensor, n: int, dim: int, norm: str) -> Tensor:  # noqa: D102
        ctx.length, ctx.dim, ctx.norm, ctx.in_length = n, dim, norm, x.shape[dim]
        ctx.in_dtype = x.dtype
        return torch.fft.rfft(x, n=n, dim=dim, norm=norm)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:  # noqa: D102
        length, dim = ctx.length, ctx.dim
        bins = grad.shape[dim]
        mirrored = (length - 1) // 2  # bins 1..mirrored have a mirror image in the full FFT
        halve = torch.ones(bins, dtype=grad.real.dtype, device=grad.device)  # (bins,)
        halve.narrow(0, 1, mirrored).fill_(0.5)
        shape = [1] * grad.dim()
        shape[dim] = bins
        scale = {"backward": 1.0, "ortho": length**-0.5, "forward": 1.0 / length}[ctx.norm]
        full = torch.fft.irfft(grad * halve.view(shape), n=length, dim=dim, norm="forward")
        dx = (full * scale).narrow(dim, 0, ctx.in_length)  # drop the zero padding's gradient
        return dx.to(ctx.in_dtype), None, None, None


def rfft_lean(x: Tensor, dim: int = -1, n: int | None = None, norm: str = "backward") -> Tensor:
    """``torch.fft.rfft(x, n=n, dim=dim, norm=norm)`` that saves nothing for its backward.

    Same values and gradients as ``torch.fft.rfft`` (see the module docstring for the adjoint);
    ``n`` (default: the input's length along ``dim``) must not be shorter than the input.

    Args:
        x: Real input (float32 or float64; half precision where ``torch.fft`` allows it).
        dim: The transformed dim.
        n: Transform length ``L`` (the input is zero-padded to it).
        norm: ``backward`` (no scaling), ``ortho`` or ``forward``, as in ``torch.fft``.

    Returns:
        Complex ``(..., L // 2 + 1, ...)`` along ``dim``.
    """
    dim = dim % x.dim()
    length = x.shape[dim] if n is None else n
    if length < x.shape[dim]:
        raise ValueError(f"n = {length} is shorter than the input's {x.shape[dim]} samples")
    if norm not in ("backward", "ortho", "forward"):
        raise ValueError(f"norm must be backward, ortho or forward, got {norm!r}")
    return _LeanRFFT.apply(x, length, dim, norm)


def fft_length(n: int) -> int:
    """A fast FFT length ``>= 2n`` for zero-padded linear convolution (next power of two)."""
    return 1 << (2 * n - 1).bit_length()


def real_from_half_spectrum(half: Tensor, d: int) -> Tensor:
    r"""The real part of a real signal's 2-D spectrum from its columns :math:`m \le D/2`.

    :math:`\mathrm{Re}\,Y_{n,m} = \mathrm{Re}\,Y_{(-n) \bmod N,\,D-m}` gives the other
    columns (module doc). For :math:`m = D/2+1, \dots, D-1` the source columns
    :math:`D-m` run from :math:`D - D/2 - 1` down to 1 (a flip of columns
    :math:`1 .. D-D/2-1`), and the source rows :math:`(-n) \bmod N` are
    :math:`0, N-1, \dots, 1` (a flip of the rows rolled by one). Flips need no index
    tensors, so the function holds nothing between calls: it runs inside custom ops that
    CUDA graphs record, where a cached index built on first use would live in the graph's
    private memory pool.

    Args:
        half: ``(..., N, D//2+1)``, the real part of the columns :math:`m \le D/2`.
        d: The signal's width D.

    Returns:
        ``(..., N, D)``.
    """
    h = d // 2 + 1
    flipped = half[..., 1 : d - h + 1].flip(-2, -1)  # (..., N, D-H): rows N-1..0, cols D-H..1
    mirror = flipped.roll(1, dims=-2)  # (..., N, D-H): rows 0, N-1, ..., 1
    return torch.cat([half, mirror], dim=-1)  # (..., N, D)


def _real_fft2(x: Tensor) -> Tensor:
    """``Re FFT2(x)`` over the last two dims from the half spectrum, in ``x``'s dtype."""
    half = torch.fft.rfft2(x.to(compute_dtype(x)), dim=(-2, -1)).real  # (..., N, D//2+1)
    return real_from_half_spectrum(half, x.shape[-1]).to(x.dtype)  # (..., N, D)


@torch.library.custom_op("spectrans::fourier_mix_2d", mutates_args=())
def _fourier_mix_2d_op(x: Tensor) -> Tensor:
    """FNet mixing as one opaque op (complex intermediates stay inside it)."""
    return _real_fft2(x)


@_fourier_mix_2d_op.register_fake
def _(x: Tensor) -> Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _fourier_mix_2d_backward(ctx: object, grad: Tensor) -> Tensor:
    return _fourier_mix_2d_op(grad.contiguous())  # self-adjoint: dx = Re FFT2(dy)


_fourier_mix_2d_op.register_autograd(_fourier_mix_2d_backward)


@torch.library.custom_op("spectrans::half_spectrum_2d", mutates_args=())
def _half_spectrum_2d(x: Tensor) -> Tensor:
    """``RFFT2(x)`` over the last two dims as real pairs: ``(..., N, D//2+1, 2)``."""
    return torch.view_as_real(torch.fft.rfft2(x.to(compute_dtype(x)), dim=(-2, -1)))


@_half_spectrum_2d.register_fake
def _(x: Tensor) -> Tensor:
    return x.new_empty((*x.shape[:-1], x.shape[-1] // 2 + 1, 2), dtype=compute_dtype(x))


def _real_fft2_traced(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``Re FFT2(x)`` from the opaque half spectrum and the traced completion, in ``dtype``."""
    half = _half_spectrum_2d(x.contiguous())[..., 0]  # (..., N, D//2+1): real parts, a view
    return real_from_half_spectrum(half, x.shape[-1]).to(dtype)  # (..., N, D)


class _FourierMixTraced(torch.autograd.Function):
    """:func:`fourier_mix_2d_traced`: the same self-adjoint map, forward and backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        ctx.in_dtype = x.dtype
        return _real_fft2_traced(x, x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        return _real_fft2_traced(grad, ctx.in_dtype)


def fourier_mix_2d_traced(x: Tensor) -> Tensor:
    r"""FNet mixing :math:`\mathrm{Re}\,\mathrm{FFT2}(x)` with only the transform opaque.

    The same map as the half-spectrum op of :func:`fourier_mix_2d`, split differently: cuFFT's
    half spectrum is one custom op returning the complex bins as real pairs, and the rest (the
    real parts, the mirrored columns :func:`real_from_half_spectrum` completes, the cast) is
    plain tensor code, which ``torch.compile`` can fuse into the neighbouring kernels (residual
    add, dropout, layer norm) instead of running a gather and a concatenation of its own. The
    backward is the same map on the output gradient (:math:`\mathrm{Re}\,\mathrm{FFT2}` is
    self-adjoint, module doc); nothing is saved.

    Args:
        x: ``(..., N, D)`` real tensor.

    Returns:
        ``(..., N, D)`` tensor, same dtype; the transform runs in float32 for half precision.
    """
    return _FourierMixTraced.apply(x)


HALF_SPECTRUM_MIN_WIDTH = 256
""":func:`fourier_mix_2d` computes from the half spectrum for inputs at least this wide (D).

Measured on an H200 in bf16 (``results/train_step.md``, 2026-11-30 21:01 UTC, compiled
training steps): the half spectrum took the ListOps step (D = 512) from 16.82 to 16.02 ms and
the layer benchmark (D = 256) from 7.3 to 5.7 ms at N = 65536 (``results/scaling_graph``), but
the Pathfinder-32 step (D = 32) from 5.02 to 7.22 ms. That case was not profiled; at a width of
32 the sequence FFT runs over 17 interleaved columns and the mirrored half is a gather of
single elements, the likely costs."""


def fourier_mix_2d(x: Tensor) -> Tensor:
    """FNet mixing: real part of the 2-D FFT over the last two dims (sequence, hidden).

    From :data:`HALF_SPECTRUM_MIN_WIDTH` channels on, computed from the half spectrum and
    differentiated as its own adjoint (module doc; saves nothing for the backward); narrower
    inputs take ``torch.fft.fft2`` and its autograd. Half-precision inputs are transformed in
    float32.

    Args:
        x: ``(..., N, D)`` real tensor.

    Returns:
        ``(..., N, D)`` tensor, same dtype.
    """
    if x.shape[-1] >= HALF_SPECTRUM_MIN_WIDTH:
        return _fourier_mix_2d_op(x)
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
