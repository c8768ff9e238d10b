r"""DCT and DST through FFTs, with exactly ``scipy.fft.dct/idct/dst/idst`` semantics.

Supported: DCT types 2 and 3, DST types 1, 2 and 3; ``norm`` in ``None``/``"backward"``,
``"ortho"`` and ``"forward"``; any length ``n >= 1``; any ``dim``. Every path is
``O(n log n)`` (one real FFT of length ``n``, or ``2(n + 1)`` for DST-I); dense matrices exist
only in the tests, as oracles.

Unnormalised definitions (scipy's ``norm="backward"`` forward transforms), ``n`` samples:

.. math::

    \text{DCT-II: } y_k = 2\sum_{j=0}^{n-1} x_j \cos\frac{\pi k (2j+1)}{2n}, \qquad
    \text{DCT-III: } y_k = x_0 + 2\sum_{j=1}^{n-1} x_j \cos\frac{\pi j (2k+1)}{2n},

    \text{DST-I: } y_k = 2\sum_{j=0}^{n-1} x_j \sin\frac{\pi (k+1)(j+1)}{n+1}, \qquad
    \text{DST-II: } y_k = 2\sum_{j=0}^{n-1} x_j \sin\frac{\pi (k+1)(2j+1)}{2n},

    \text{DST-III: } y_k = (-1)^k x_{n-1} + 2\sum_{j=0}^{n-2} x_j \sin\frac{\pi (2k+1)(j+1)}{2n}.

Reductions to the FFT:

- DCT-II (Makhoul 1980): reorder :math:`v = (x_0, x_2, x_4, \dots, x_5, x_3, x_1)`,
  :math:`V = \mathrm{FFT}(v)`, :math:`z_k = e^{-i\pi k/(2n)} V_k`; then
  :math:`y_k = 2\,\mathrm{Re}\, z_k` and :math:`y_{n-k} = -2\,\mathrm{Im}\, z_k`, so a real FFT
  (bins ``0..n//2``) suffices.
- DCT-III: the inverse of the above: :math:`z_k = (y_k - i\,y_{n-k})/2` (:math:`y_n = 0`),
  :math:`V_k = e^{+i\pi k/(2n)} z_k`, :math:`v = \mathrm{IRFFT}(V)`, undo the reordering; this
  is ``DCT-III(y) / (2n)``.
- DST-II: :math:`\mathrm{DST2}(x) = \mathrm{flip}(\mathrm{DCT2}((-1)^j x_j))`; DST-III:
  :math:`\mathrm{DST3}(x)_k = (-1)^k\,\mathrm{DCT3}(\mathrm{flip}(x))_k` (same for ortho).
- DST-I: the odd extension :math:`u = (0, x, 0, -\mathrm{flip}(x))` of length ``2(n+1)`` has
  :math:`\mathrm{FFT}(u)_{k+1} = -i\,\mathrm{DST1}(x)_k`.

Normalisations (as scipy): ``"ortho"`` makes DCT/DST-II and -III orthogonal (each other's
transposes; DCT-II scales :math:`y_0` by :math:`\sqrt{1/(4n)}` and the rest by
:math:`\sqrt{1/(2n)}`; DST-II the same on :math:`y_{n-1}`) and DST-I symmetric orthogonal
(:math:`\sqrt{1/(2(n+1))}`). ``"backward"`` divides the inverse by ``2n`` (``2(n+1)`` for
DST-I), ``"forward"`` the forward transform. Half and bfloat16 inputs are computed in float32
and cast back.

Examples:
    >>> import torch
    >>> from spectrans.transforms.cosine import dct, idct
    >>> x = torch.randn(3, 100, dtype=torch.float64)
    >>> torch.allclose(idct(dct(x)), x)
    True
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spectrans.transforms.constants import eager_cached
from spectrans.transforms.fft import rfft_lean
from spectrans.transforms.precision import compute_dtype

_NORMS = (None, "backward", "ortho", "forward")
_DCT_TYPES = (2, 3)
_DST_TYPES = (1, 2, 3)


def _check(kind: str, type_: int, norm: str | None, allowed: tuple[int, ...]) -> None:
    """Raise one clear sentence for an unsupported transform type or norm."""
    if type_ not in allowed:
        raise ValueError(f"{kind} type={type_!r} is not supported; use one of {allowed}")
    if norm not in _NORMS:
        raise ValueError(
            f"norm={norm!r} is not supported; use None, 'backward', 'ortho' or 'forward'"
        )


def _compute_dtype(x: Tensor) -> torch.dtype:
    """:func:`compute_dtype` of a floating-point ``x`` (other dtypes are refused)."""
    if not x.is_floating_point():
        raise ValueError(f"expected a floating point tensor, got dtype {x.dtype}")
    return compute_dtype(x)


def _bshape(x: Tensor, dim: int, values: Tensor) -> Tensor:
    """Reshape a 1-D tensor so that it broadcasts along ``dim`` of ``x``."""
    shape = [1] * x.dim()
    shape[dim] = values.numel()
    return values.reshape(shape)


def _slice(x: Tensor, dim: int, sl: slice) -> Tensor:
    """``x`` sliced by ``sl`` along ``dim``."""
    return x[(slice(None),) * dim + (sl,)]


@eager_cached(maxsize=64)
def _makhoul_perm(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """(forward, inverse) index permutations of Makhoul's even/odd reordering."""
    evens = torch.arange(0, n, 2, device=device)
    odds_reversed = torch.arange(1, n, 2, device=device).flip(0)
    forward = torch.cat([evens, odds_reversed])  # (n,)
    return forward, torch.argsort(forward)


class _Permute(torch.autograd.Function):
    """``x.index_select(dim, perm)`` with the inverse permutation as its backward.

    A gather both ways, instead of index_select's much slower ``index_add_`` backward.
    """

    @staticmethod
    def forward(ctx, x: Tensor, dim: int, perm: Tensor, inverse: Tensor) -> Tensor:  # noqa: D102
        ctx.dim, ctx.inverse, ctx.perm = dim, inverse, perm
        return x.index_select(dim, perm)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None, None]:  # noqa: D102
        return _Permute.apply(grad, ctx.dim, ctx.inverse, ctx.perm), None, None, None


def _permute(x: Tensor, dim: int, inverse: bool) -> Tensor:
    if dim == x.dim() - 1:  # a gather of single elements is slow: slice instead
        return _unreorder_slices(x, dim) if inverse else _reorder_slices(x, dim)
    perm, inv = _makhoul_perm(x.shape[dim], x.device)
    return _Permute.apply(x, dim, inv, perm) if inverse else _Permute.apply(x, dim, perm, inv)


def makhoul_reorder(x: Tensor, dim: int) -> Tensor:
    """``(x_0, x_2, x_4, ..., x_5, x_3, x_1)`` along ``dim`` (evens, then odds reversed)."""
    return _permute(x, dim, inverse=False)


def makhoul_unreorder(v: Tensor, dim: int) -> Tensor:
    """Inverse of :func:`makhoul_reorder`."""
    return _permute(v, dim, inverse=True)


def _reorder_slices(x: Tensor, dim: int) -> Tensor:
    evens = _slice(x, dim, slice(0, None, 2))
    odds = _slice(x, dim, slice(1, None, 2)).flip(dim)
    return torch.cat([evens, odds], dim=dim)


def _unreorder_slices(v: Tensor, dim: int) -> Tensor:
    n = v.shape[dim]
    half = (n + 1) // 2
    even = v.narrow(dim, 0, half)  # x_0, x_2, ...
    odd = v.narrow(dim, half, n - half).flip(dim)  # x_1, x_3, ...
    if n % 2:
        odd = torch.cat([odd, torch.zeros_like(even.narrow(dim, 0, 1))], dim=dim)
    out = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)  # interleave
    return out.narrow(dim, 0, n) if n % 2 else out


@eager_cached(maxsize=64)
def _twiddle(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """exp(-i pi k / (2n)) for k = 0..n//2 (complex)."""
    k = torch.arange(n // 2 + 1, dtype=torch.float64, device=device)
    w = torch.polar(torch.ones_like(k), -math.pi * k / (2 * n))
    return w.to(torch.complex128 if dtype == torch.float64 else torch.complex64)


@eager_cached(maxsize=64)
def alternating_signs(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(+1, -1, +1, ...) of length n (cached: do not modify in place)."""
    return (1.0 - 2.0 * (torch.arange(n, device=device) % 2)).to(dtype)


def _dct2_raw(x: Tensor, dim: int) -> Tensor:
    """Unnormalised DCT-II along ``dim`` (scipy ``norm='backward'``), Makhoul's reduction."""
    n = x.shape[dim]
    v = makhoul_reorder(x, dim)  # (..., n, ...) reordered
    z = rfft_lean(v, dim=dim) * _bshape(x, dim, _twiddle(n, x.dtype, x.device))  # n//2+1
    head = 2.0 * z.real  # y_k, k = 0..n//2
    tail = -2.0 * z.imag.narrow(dim, 1, (n - 1) // 2).flip(dim)  # y_k, k = n//2+1..n-1
    return torch.cat([head, tail], dim=dim)


def _dct3_raw(y: Tensor, dim: int) -> Tensor:
    """Unnormalised DCT-III along ``dim`` (scipy ``norm='backward'``), inverse Makhoul."""
    n = y.shape[dim]
    half = n // 2 + 1
    rev = torch.cat(
        [torch.zeros_like(y.narrow(dim, 0, 1)), y.narrow(dim, 1, n - 1).flip(dim)], dim=dim
    )  # y_{n-k}, with y_n = 0
    z = torch.complex(y.narrow(dim, 0, half), -rev.narrow(dim, 0, half)) * 0.5  # (.., n//2+1)
    V = z * _bshape(y, dim, _twiddle(n, y.dtype, y.device).conj())
    v = torch.fft.irfft(V, n=n, dim=dim)  # DCT-III(y) / (2n), reordered
    return makhoul_unreorder(v, dim) * (2.0 * n)


def ortho_weights(n: int, first: bool, dtype: torch.dtype, device: torch.device) -> Tensor:
    """sqrt(1/(2n)) everywhere except sqrt(1/(4n)) at index 0 (first) or n-1 (not first)."""
    w = torch.full((n,), math.sqrt(1.0 / (2 * n)), dtype=dtype, device=device)
    # fill_ passes the value to the kernel; item assignment would copy a host scalar to the
    # device, which a CUDA graph cannot capture
    w.narrow(0, 0 if first else n - 1, 1).fill_(math.sqrt(1.0 / (4 * n)))
    return w


def _dct2(x: Tensor, dim: int, ortho: bool) -> Tensor:
    y = _dct2_raw(x, dim)
    if ortho:
        y = y * _bshape(y, dim, ortho_weights(y.shape[dim], True, y.dtype, y.device))
    return y


def _dct3(x: Tensor, dim: int, ortho: bool) -> Tensor:
    if ortho:  # the transpose of orthonormal DCT-II
        n = x.shape[dim]
        w = torch.full((n,), math.sqrt(1.0 / (2 * n)), dtype=x.dtype, device=x.device)
        w.narrow(0, 0, 1).fill_(math.sqrt(1.0 / n))  # no host-to-device copy (see ortho_weights)
        x = x * _bshape(x, dim, w)
    return _dct3_raw(x, dim)


def _dst2(x: Tensor, dim: int, ortho: bool) -> Tensor:
    alt = _bshape(x, dim, alternating_signs(x.shape[dim], x.dtype, x.device))
    return _dct2(x * alt, dim, ortho).flip(dim)


def _dst3(x: Tensor, dim: int, ortho: bool) -> Tensor:
    alt = _bshape(x, dim, alternating_signs(x.shape[dim], x.dtype, x.device))
    return _dct3(x.flip(dim), dim, ortho) * alt


def _dst1(x: Tensor, dim: int, ortho: bool) -> Tensor:
    n = x.shape[dim]
    zero = torch.zeros_like(x.narrow(dim, 0, 1))
    u = torch.cat([zero, x, zero, -x.flip(dim)], dim=dim)  # odd extension, length 2(n+1)
    y = -torch.fft.rfft(u, dim=dim).imag.narrow(dim, 1, n)  # (.., n, ..)
    return y * math.sqrt(1.0 / (2 * (n + 1))) if ortho else y


_FORWARD = {
    ("dct", 2): _dct2,
    ("dct", 3): _dct3,
    ("dst", 1): _dst1,
    ("dst", 2): _dst2,
    ("dst", 3): _dst3,
}
_INVERSE_TYPE = {1: 1, 2: 3, 3: 2}


def _factor(type_: int, n: int) -> float:
    """The scale between a transform and its unnormalised inverse: 2n, or 2(n+1) for type 1."""
    return 2.0 * (n + 1) if type_ == 1 else 2.0 * n


def _apply(kind: str, x: Tensor, type_: int, norm: str | None, dim: int, inverse: bool) -> Tensor:
    """Shared driver: dtype handling, dim, norm, forward/inverse."""
    _check(kind, type_, norm, _DCT_TYPES if kind == "dct" else _DST_TYPES)
    dim = dim % x.dim() if x.dim() else 0
    if x.dim() == 0 or x.shape[dim] == 0:
        raise ValueError(f"{kind} needs at least one sample along dim {dim}, got {tuple(x.shape)}")
    out_dtype = x.dtype
    xc = x.to(_compute_dtype(x))
    run_type = _INVERSE_TYPE[type_] if inverse else type_
    y = _FORWARD[(kind, run_type)](xc, dim, norm == "ortho")
    scaled = (norm == "forward") if not inverse else (norm in (None, "backward"))
    if scaled:
        y = y / _factor(type_, x.shape[dim])
    return y.to(out_dtype)


def dct(x: Tensor, type: int = 2, norm: str | None = "ortho", dim: int = -1) -> Tensor:  # noqa: A002
    """Discrete cosine transform along ``dim`` (``scipy.fft.dct`` semantics).

    Args:
        x: Real tensor, any shape; ``dim`` must have at least one sample.
        type: 2 or 3.
        norm: ``"ortho"`` (default here; scipy's default is ``None``), ``None``/``"backward"``
            or ``"forward"``.
        dim: The axis to transform.

    Returns:
        Tensor of the same shape and dtype.
    """
    return _apply("dct", x, type, norm, dim, inverse=False)


def idct(x: Tensor, type: int = 2, norm: str | None = "ortho", dim: int = -1) -> Tensor:  # noqa: A002
    """Inverse DCT along ``dim`` (``scipy.fft.idct``): ``idct(dct(x, t, norm), t, norm) == x``."""
    return _apply("dct", x, type, norm, dim, inverse=True)


def dst(x: Tensor, type: int = 2, norm: str | None = "ortho", dim: int = -1) -> Tensor:  # noqa: A002
    """Discrete sine transform along ``dim`` (``scipy.fft.dst``), types 1, 2, 3."""
    return _apply("dst", x, type, norm, dim, inverse=False)


def idst(x: Tensor, type: int = 2, norm: str | None = "ortho", dim: int = -1) -> Tensor:  # noqa: A002
    """Inverse DST along ``dim`` (``scipy.fft.idst``): ``idst(dst(x, t, norm), t, norm) == x``."""
    return _apply("dst", x, type, norm, dim, inverse=True)
