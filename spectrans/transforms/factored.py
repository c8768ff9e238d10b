r"""Walsh-Hadamard and DCT-II / DST-II as a few small GEMMs on contiguous views (O(N sqrt N)).

Every function here acts along axis 1 of a real ``x`` of shape ``(B, N, C)`` (``C`` channels,
e.g. heads times head width, contiguous) and applies small dense matrices along one axis of
a reshaped view at a time: ``(m x m) @ (m, rest)`` batched matrix products, never a transpose
of ``x``. A length-``N`` transform costs ``O(N (a + b))`` multiply-adds per channel with
``a b = N``, against ``N^2`` for the dense matrix.

**Hadamard** (Sylvester order, :math:`P = 2^k`): :math:`H_P = H_a \otimes H_b` for any
powers of two :math:`a b = P`, so with the view :math:`x[i_a, i_b]` of index
:math:`i = i_a b + i_b`,

.. math::  (H_P x)[k_a, k_b] = \sum_{i_a} (H_a)_{k_a i_a} \sum_{i_b} (H_b)_{k_b i_b}\, x[i_a, i_b]:

``H_b`` as ``(b x b) @ (b, C)`` over the ``B a`` batch, then ``H_a`` as ``(a x a) @ (a, b C)``
over ``B``. Entries are +-1 (exact in any float format); :func:`hadamard_factored` returns
the unnormalised :math:`H_P x`, coefficient ``k`` at position ``k`` (natural order).

**DCT-II** (Makhoul 1980 and the four-step DFT, Bailey 1990). With the reordering
:math:`v = (x_0, x_2, x_4, \dots, x_3, x_1)`, :math:`V = \mathrm{DFT}_N(v)` and
:math:`W_k = e^{-i\pi k / 2N}`,

.. math::  c_k := \sum_{j} x_j \cos\frac{\pi k (2j + 1)}{2N} = \mathrm{Re}(W_k V_k),
    \quad k = 0..N-1

(scipy's unnormalised DCT-II is :math:`2c`). For :math:`N = N_1 N_2`, :math:`n = N_2 n_1 + n_2`
and :math:`k = k_1 + N_1 k_2`, the DFT splits (the cross term :math:`n_1 k_2` is an integer):

.. math::  V_{k_1 + N_1 k_2} = \sum_{n_2} e^{-2\pi i n_2 k_2 / N_2}\;
    e^{-2\pi i n_2 k_1 / N} \sum_{n_1} e^{-2\pi i n_1 k_1 / N_1}\, v[n_1, n_2],

and :math:`W_k = e^{-i\pi k_1 / 2N}\, e^{-i\pi k_2 / 2N_2}`. In real arithmetic on stacked
real and imaginary parts:

1. :math:`A = F_1 v` along :math:`n_1`: :math:`F_1` is ``(2 N1, N1)``, rows
   :math:`(k_1, \mathrm{re}) = \cos(2\pi k_1 n_1 / N_1)`,
   :math:`(k_1, \mathrm{im}) = -\sin(2\pi k_1 n_1 / N_1)`; ``A`` is ``(B, N1, 2, N2, C)``.
2. Twiddle: :math:`A[k_1, :, n_2] \mathrel{*}= t = e^{-i\pi k_1 (4 n_2 + 1) / 2N}` (the DFT
   twiddle and the :math:`k_1` part of :math:`W_k`), a complex product per element.
3. :math:`c[k_1, k_2] = \sum_{n_2} \mathrm{Re}(g_{k_2 n_2}) A_{re} - \mathrm{Im}(g_{k_2 n_2})
   A_{im}` with :math:`g_{k_2 n_2} = e^{-i\pi k_2 (4 n_2 + 1) / 2N_2}` (the DFT along
   :math:`n_2` and the :math:`k_2` part of :math:`W_k`): one ``(N2, 2 N2)`` real matrix
   applied to the ``(2 N2, C)`` block of each :math:`k_1`.

Cost ``2 N1 + 2 N2`` multiply-adds per sample and channel, plus the twiddle. The output is
``(B, N1, N2, C)`` with :math:`c_k` at ``[k1, k2]``, i.e. **the coefficients in the
transposed order** :math:`k = k_1 + N_1 k_2` (:func:`fourstep_order` gives ``k`` of every
position). A diagonal filter does not care about the order: permute the gains instead.
:func:`dct2_fourstep_adjoint` applies the transpose :math:`R^T` of this map
:math:`R: x \mapsto c` (the same matrices transposed, in reverse order, and the conjugate
twiddle), so :math:`R^T \mathrm{diag}(g) R` is computed without ever forming a
length-``N`` ordering of the coefficients.

**DST-II**: :math:`\mathrm{DST2}(x)_k = \mathrm{DCT2}((-1)^j x_j)_{N-1-k}`. The signs
:math:`(-1)^j` become, after the reordering, :math:`+1` on the first :math:`\lceil N/2\rceil`
samples of ``v`` and :math:`-1` on the rest; when ``N1`` is even that is a sign per
:math:`n_1`, folded into the columns of :math:`F_1` (else one elementwise product).

Lengths: the split ``N = N1 N2`` is :func:`fourstep_split` (``N1`` and ``N2`` near
:math:`\sqrt N`, ``N1`` even when ``N`` is); a prime ``N`` has no split (``N1 = 1``) and its
callers fall back to the dense matrix.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from spectrans.transforms.constants import eager_cached
from spectrans.transforms.cosine import makhoul_reorder, makhoul_unreorder
from spectrans.transforms.hadamard import sylvester_matrix


def hadamard_split(p: int) -> tuple[int, int]:
    """``(a, b)`` with ``a b = p`` (a power of two), ``a = 2^{floor(log2(p) / 2)}``."""
    if p < 1 or p & (p - 1):
        raise ValueError(f"p must be a power of two, got {p}")
    a = 1 << ((p.bit_length() - 1) // 2)
    return a, p // a


@functools.lru_cache(maxsize=256)
def fourstep_split(n: int) -> tuple[int, int]:
    r"""``(N1, N2)`` with ``N1 N2 = n``: the divisor pair nearest :math:`\sqrt n`.

    ``N1`` is the even member of the pair when exactly one is even (so the DST signs fold
    into :math:`F_1`). ``N1 = 1`` means ``n`` is prime (or 1): no four-step split.
    """
    if n < 1:
        raise ValueError(f"length must be at least 1, got {n}")
    small = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    big = n // small
    if small == 1:
        return 1, n
    return (big, small) if small % 2 and not big % 2 else (small, big)


def hadamard_factored(x: Tensor) -> Tensor:
    """Unnormalised Walsh-Hadamard transform :math:`H_P x` along axis 1 of ``(B, P, C)``.

    ``P`` must be a power of two (pad first). Two batched GEMMs: ``H_b`` along the fast
    axis of the ``(B, a, b, C)`` view, then ``H_a`` along the slow one. ``H_P`` is
    symmetric, so this is also its own adjoint (and ``H_P H_P = P I``).
    """
    batch, p, c = x.shape
    a, b = hadamard_split(p)
    hb = sylvester_matrix(b, x.dtype, x.device)  # (b, b)
    y = torch.matmul(hb, x.reshape(batch * a, b, c))  # (B*a, b, C)
    if a == 1:
        return y.view(batch, p, c)
    ha = sylvester_matrix(a, x.dtype, x.device)  # (a, a)
    return torch.matmul(ha, y.view(batch, a, b * c)).view(batch, p, c)  # (B, P, C)


def fourstep_order(n: int, device: torch.device | None = None) -> Tensor:
    """Coefficient index ``k = k1 + N1 k2`` at each position ``k1 N2 + k2`` of the output."""
    n1, n2 = fourstep_split(n)
    k1 = torch.arange(n1, device=device)[:, None]
    k2 = torch.arange(n2, device=device)[None, :]
    return (k1 + n1 * k2).reshape(n)  # (N,)


def _work(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _angle(num: Tensor, den: int) -> Tensor:
    r""":math:`\pi\,\mathrm{num} / \mathrm{den}`, ``num`` reduced mod ``2 den`` in integers."""
    return (num % (2 * den)).to(torch.float64) * (math.pi / den)


@eager_cached(maxsize=32)
def _dct_matrices(
    n: int, sine: bool, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """``F1 (2 N1, N1)``, ``F3 (N2, 2 N2)``, twiddle ``(N1, 2, N2, 2)``, signs or None.

    The twiddle's last axis holds the two real coefficients of the complex product
    ``(re, im) -> (tr re - ti im, tr im + ti re)`` written as ``A * tw[..., 0] +
    swap(A) * tw[..., 1]`` with ``swap(A) = (im, re)``. ``signs`` (``(N, 1)``) is the DST
    sign vector when it does not fold into ``F1``.
    """
    n1, n2 = fourstep_split(n)
    k1 = torch.arange(n1, device=device)[:, None]
    m1 = torch.arange(n1, device=device)[None, :]
    phase1 = _angle(2 * k1 * m1, n1)  # (N1, N1): 2 pi k1 n1 / N1
    f1 = torch.stack([torch.cos(phase1), -torch.sin(phase1)], dim=1).reshape(2 * n1, n1)
    signs = None
    if sine:
        half = -(-n // 2)  # samples of v with sign +1
        if n1 % 2 == 0 and half % n2 == 0:
            f1 = f1 * torch.where(m1 < half // n2, 1.0, -1.0).to(f1)  # sign per column n1
        else:
            signs = torch.where(torch.arange(n, device=device) < half, 1.0, -1.0)[:, None]
    q2 = torch.arange(n2, device=device)
    tw_phase = _angle(k1 * (4 * q2[None, :] + 1), 2 * n)  # (N1, N2): pi k1 (4 n2 + 1) / 2N
    tr, ti = torch.cos(tw_phase), torch.sin(-tw_phase)
    tw = torch.stack(
        [torch.stack([tr, -ti], dim=-1), torch.stack([tr, ti], dim=-1)], dim=1
    )  # (N1, 2, N2, 2)
    phase3 = _angle(q2[:, None] * (4 * q2[None, :] + 1), 2 * n2)  # (N2, N2): [k2, n2]
    f3 = torch.cat([torch.cos(phase3), torch.sin(phase3)], dim=1)  # (N2, 2 N2): Re g, -Im g
    cast = functools.partial(Tensor.to, dtype=dtype)
    return cast(f1), cast(f3), cast(tw), None if signs is None else cast(signs)


def _swap(a: Tensor) -> Tensor:
    """``(re, im) -> (im, re)`` along axis 2 of ``(B, N1, 2, N2, C)``."""
    return a.flip(2)


def dct2_fourstep(x: Tensor, sine: bool = False) -> Tensor:
    r"""The four-step map :math:`R`: ``x (B, N, C)`` to ``c (B, N1, N2, C)`` (module doc).

    ``c[:, k1, k2] = sum_j x_j cos(pi k (2j + 1) / 2N)`` at ``k = k1 + N1 k2``; with
    ``sine`` the same of :math:`(-1)^j x_j` (so :math:`\mathrm{DST2}(x)_{N-1-k} = 2 c_k`).
    Needs a split ``N1 > 1`` (:func:`fourstep_split`).
    """
    batch, n, c = x.shape
    n1, n2 = fourstep_split(n)
    if n1 == 1:
        raise ValueError(f"length {n} has no four-step split (it is prime or 1)")
    f1, f3, tw, signs = _dct_matrices(n, sine, x.dtype, x.device)
    v = makhoul_reorder(x, 1)  # (B, N, C)
    if signs is not None:
        v = v * signs
    a = torch.matmul(f1, v.reshape(batch, n1, n2 * c)).view(batch, n1, 2, n2, c)
    tw = tw[..., None]  # (N1, 2, N2, 2, 1)
    a = torch.addcmul(a * tw[..., 0, :], _swap(a), tw[..., 1, :])  # (B, N1, 2, N2, C)
    out = torch.matmul(f3, a.view(batch * n1, 2 * n2, c))  # (B*N1, N2, C)
    return out.view(batch, n1, n2, c)


def dct2_fourstep_adjoint(coeffs: Tensor, sine: bool = False) -> Tensor:
    """:math:`R^T` of :func:`dct2_fourstep`: ``(B, N1, N2, C)`` to ``(B, N, C)``.

    The transposed matrices in reverse order; the twiddle's transpose is the product with
    the conjugate, ``(re, im) -> (tr re + ti im, tr im - ti re)``.
    """
    batch, n1, n2, c = coeffs.shape
    n = n1 * n2
    f1, f3, tw, signs = _dct_matrices(n, sine, coeffs.dtype, coeffs.device)
    a = torch.matmul(f3.t(), coeffs.reshape(batch * n1, n2, c))  # (B*N1, 2 N2, C)
    a = a.view(batch, n1, 2, n2, c)
    tw = tw[..., None]  # (N1, 2, N2, 2, 1)
    a = torch.addcmul(a * tw[..., 0, :], _swap(a), tw[..., 1, :], value=-1)  # (B, N1, 2, N2, C)
    v = torch.matmul(f1.t(), a.view(batch, 2 * n1, n2 * c)).view(batch, n, c)  # (B, N, C)
    if signs is not None:
        v = v * signs
    return makhoul_unreorder(v, 1)  # (B, N, C)


@eager_cached(maxsize=32)
def _fnet_matrices(
    n: int, dim: int, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """``G (D, 2D)``, ``F1 (2 N1, N1)``, twiddle ``tr, ti (N1, N2, 1)``, ``F3 (N2, 2 N2)``."""
    n1, n2 = fourstep_split(n)
    j = torch.arange(dim, device=device)
    phase_d = _angle(2 * j[:, None] * j[None, :], dim)  # (D, D): 2 pi j l / D
    hidden = torch.cat([torch.cos(phase_d), -torch.sin(phase_d)], dim=1)  # (D, 2D): F_D re, im
    k1 = torch.arange(n1, device=device)[:, None]
    phase1 = _angle(2 * k1 * torch.arange(n1, device=device)[None, :], n1)  # (N1, N1)
    f1 = torch.stack([torch.cos(phase1), -torch.sin(phase1)], dim=1).reshape(2 * n1, n1)
    q2 = torch.arange(n2, device=device)
    tw_phase = _angle(2 * k1 * q2[None, :], n)  # (N1, N2): 2 pi k1 n2 / N
    tr, ti = torch.cos(tw_phase)[..., None], -torch.sin(tw_phase)[..., None]  # (N1, N2, 1)
    phase3 = _angle(2 * q2[:, None] * q2[None, :], n2)  # (N2, N2): 2 pi k2 n2 / N2
    f3 = torch.cat([torch.cos(phase3), torch.sin(phase3)], dim=1)  # (N2, 2 N2): Re(e^{-i psi} .)
    return tuple(t.to(dtype) for t in (hidden, f1, tr, ti, f3))  # type: ignore[return-value]


def fnet_fourstep(x: Tensor) -> Tensor:
    r"""FNet's :math:`y = \mathrm{Re}(F_N\, x\, F_D)` of ``x (B, N, D)`` as GEMMs.

    :math:`F_m = C_m - i S_m` is the DFT matrix (symmetric). The hidden DFT is one GEMM,
    :math:`Z = x\,[C_D \mid -S_D]` (``Z_re``, ``Z_im`` side by side in the channels), and
    :math:`y = \mathrm{Re}(F_N Z)` is the four-step DFT of the module doc on the complex
    ``Z``: :math:`F_1 = [C_{N_1}; -S_{N_1}]` along :math:`n_1` gives the four real products,
    combined as :math:`A = (C Z_{re} + S Z_{im}) + i (C Z_{im} - S Z_{re})`; the twiddle
    :math:`e^{-2\pi i n_2 k_1 / N}`; then only the real part of the DFT along :math:`n_2`,
    :math:`\sum_{n_2} \cos\psi\, A_{re} + \sin\psi\, A_{im}` with
    :math:`\psi = 2\pi n_2 k_2 / N_2`. The result at ``[k1, k2]`` is :math:`y_{k_1 + N_1 k_2}`,
    so one transpose of the ``(N1, N2)`` axes restores the order (the only copy of the
    output). Cost ``2D + 4 N1 + 2 N2`` multiply-adds per element. Needs a split ``N1 > 1``.
    """
    batch, n, dim = x.shape
    n1, n2 = fourstep_split(n)
    if n1 == 1:
        raise ValueError(f"length {n} has no four-step split (it is prime or 1)")
    hidden, f1, tr, ti, f3 = _fnet_matrices(n, dim, x.dtype, x.device)
    z = torch.matmul(x, hidden)  # (B, N, 2D): re | im
    a = torch.matmul(f1, z.view(batch, n1, n2 * 2 * dim)).view(batch, n1, 2, n2, 2, dim)
    a_re = a[:, :, 0, :, 0] - a[:, :, 1, :, 1]  # (B, N1, N2, D)
    a_im = a[:, :, 0, :, 1] + a[:, :, 1, :, 0]  # (B, N1, N2, D)
    t = torch.stack([tr * a_re - ti * a_im, ti * a_re + tr * a_im], dim=2)  # (B, N1, 2, N2, D)
    y = torch.matmul(f3, t.view(batch * n1, 2 * n2, dim)).view(batch, n1, n2, dim)
    return y.transpose(1, 2).reshape(batch, n, dim)  # (B, N, D), natural order
