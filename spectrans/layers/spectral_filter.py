r"""Learned diagonal spectral filters along the sequence: the machinery of the LST layers.

A filter is a transform :math:`T` (orthonormal when normalised) along the sequence and a real
gain per coefficient :math:`\Lambda`:

.. math::  M = T^{-1}\,\mathrm{diag}(\Lambda)\,T \qquad (N \times N).

Kinds (``kind`` strings) and their coefficients for ``N`` samples:

- ``dct``: DCT-II, ``N`` coefficients; ``dct3``: DCT-III forward, DCT-II inverse.
- ``dst``: DST-II, ``N`` coefficients.
- ``hadamard``: Walsh-Hadamard on the signal zero-padded to :math:`P = 2^{\lceil\log_2 N\rceil}`,
  ``P`` coefficients; the filtered signal is cropped back to ``N`` (so the operator is the
  top-left ``N x N`` block of the ``P x P`` filter).
- ``fft``: real FFT, ``N // 2 + 1`` bins with real gains, i.e. a circular convolution with a
  symmetric kernel.
- ``wavelet``: orthonormal periodic 3-level db4 DWT on the signal zero-padded to a multiple
  of 8 (:class:`~spectrans.transforms.wavelet.WaveletTransform`), cropped back like
  ``hadamard``; an orthogonal ``T``, so ``T^{-1} = T^T``. Coefficients run coarse to fine.

Gains are stored as a profile over normalised frequency: a row of ``L`` values
(``L = max_sequence_length``) sampled at :math:`f_j = j / (L - 1) \in [0, 1]` (0 = DC,
1 = the highest frequency / sequency). For a length-``N`` input the gain of coefficient ``k``
of ``F`` coefficients is the linear interpolation of the profile at :math:`f = k / (F - 1)`
(:func:`resample_profile`; at ``F = L`` it is the profile itself). Hadamard coefficients in
Sylvester order are mapped through their sequency ``s(k)`` (number of sign changes):
:math:`\Lambda_k = \mathrm{profile}(s(k) / (P - 1))`.

Fast paths: DCT-II and DST-II filters never form the coefficients. With Makhoul's reordering
:math:`v = P u`, :math:`V = \mathrm{RFFT}(v)` and :math:`\Lambda_n := \Lambda_0`, the filter is

.. math::  M u = P^{-1}\,\mathrm{IRFFT}\big(a_k V_k + b_k e^{i\pi k/N}\,\overline{V_k}\big),
    \quad a_k = \tfrac{\Lambda_k + \Lambda_{N-k}}{2},\ b_k = \tfrac{\Lambda_k - \Lambda_{N-k}}{2},

one real FFT pair of length ``N`` (derived from :math:`X_k = 2\mathrm{Re}(W_k V_k)`,
:math:`X_{N-k} = -2\mathrm{Im}(W_k V_k)`, :math:`W_k = e^{-i\pi k/(2N)}`). DST-II uses
:math:`\mathrm{DST2} = R\,\mathrm{DCT2}\,A` (:math:`R` reversal, :math:`A` = diag(+1, -1, ...)):
:math:`M_{dst}(\Lambda) = A\, M_{dct}(R\Lambda)\, A`. The orthonormal scaling cancels in
:math:`T^{-1}\Lambda T`, so these are exactly the orthonormal filters.

Causal filtering uses the filter's impulse response :math:`h = (M_L e_0)_{0..N-1}` (the
response at time ``i`` to a unit impulse at time 0, with :math:`M_L` the filter at length
``L = N`` (``P`` for Hadamard, ``2N`` for FFT so the circular wrap stays outside the first ``N``
taps)) as a causal convolution :math:`y_i = \sum_{j \le i} h_{i-j} u_j`, computed by a
zero-padded FFT of length ``>= 2N``. Output ``i`` depends on inputs ``j <= i`` only, by
construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectrans.transforms.constants import eager_cached
from spectrans.transforms.cosine import (
    makhoul_reorder,
    makhoul_unreorder,
    ortho_weights,
)
from spectrans.transforms.factored import (
    dct2_fourstep,
    dct2_fourstep_adjoint,
    fourstep_split,
    hadamard_factored,
)
from spectrans.transforms.fft import causal_conv
from spectrans.transforms.hadamard import bit_parity, next_power_of_two, sequency
from spectrans.transforms.modules import DCT, DST, FFTTransform, HadamardTransform
from spectrans.transforms.precision import compute_dtype
from spectrans.transforms.wavelet import WaveletTransform

FILTER_KINDS = ("dct", "dct3", "dst", "hadamard", "fft", "wavelet")
WAVELET_KIND = ("db4", 3)
"""Wavelet and levels of the ``wavelet`` kind."""


def make_transform(kind: str, normalized: bool = True) -> nn.Module:
    """The sequence-axis (``dim=-2``) transform module of a filter kind.

    ``normalized`` picks orthonormal transforms, else scipy's ``backward`` pair (unnormalised
    forward, exact inverse); ``M`` is the same either way, only the rounding differs.
    """
    norm = "ortho" if normalized else "backward"
    if kind == "dct":
        return DCT(2, norm, dim=-2)
    if kind == "dct3":
        return DCT(3, norm, dim=-2)
    if kind == "dst":
        return DST(2, norm, dim=-2)
    if kind == "hadamard":
        return HadamardTransform(normalized, dim=-2)
    if kind == "fft":
        return FFTTransform(norm, dim=-2)
    if kind == "wavelet":  # orthonormal whatever ``normalized`` says: T^-1 = T^T
        return WaveletTransform(*WAVELET_KIND, dim=-2)
    raise ValueError(f"unknown filter kind {kind!r}; use one of {FILTER_KINDS}")


def resample_profile(profile: Tensor, n: int) -> Tensor:
    """Linear interpolation of ``profile`` (H, L) at ``n`` equispaced points of [0, 1].

    Point ``k`` is at normalised frequency ``k / (n - 1)`` (``n = 1``: DC only). Differentiable.
    """
    if profile.shape[-1] == n:
        return profile
    return F.interpolate(profile[None], size=n, mode="linear", align_corners=True)[0]  # (H, n)


def coefficient_gains(profile: Tensor, kind: str, n: int) -> Tensor:
    """Gains ``(H, F)`` of the ``F`` transform coefficients of a length-``n`` input."""
    if kind == "fft":
        return resample_profile(profile, n // 2 + 1)
    if kind == "hadamard":
        p = next_power_of_two(n)
        return resample_profile(profile, p)[:, sequency(p, profile.device)]  # natural order
    if kind == "wavelet":  # coarse to fine: a_J, d_J, ..., d_1
        return resample_profile(profile, WaveletTransform(*WAVELET_KIND).num_frequencies(n))
    return resample_profile(profile, n)


def decaying_profile(num_heads: int, length: int, min_tau: float, max_tau: float = 1.0) -> Tensor:
    r"""Low-pass init :math:`\Lambda_h(f) = \exp(-f / \tau_h)`, ``(num_heads, length)``.

    :math:`\tau_h` is log-spaced in ``[min_tau, max_tau]`` over the heads (their geometric mean
    for one head). With :math:`f \approx \omega / \pi` this is a Cauchy-shaped smoothing
    kernel about :math:`1 / (\pi \tau_h)` tokens wide: heads mix over many scales at init, and
    the DC gain is 1 (a constant signal passes unchanged).
    """
    if num_heads == 1:
        taus = torch.tensor([math.sqrt(min_tau * max_tau)], dtype=torch.float64)
    else:
        taus = torch.logspace(
            math.log10(max_tau), math.log10(min_tau), num_heads, dtype=torch.float64
        )
    f = torch.linspace(0.0, 1.0, length, dtype=torch.float64) if length > 1 else torch.zeros(1)
    return torch.exp(-f[None, :] / taus[:, None]).float()  # (H, L)


FFT_ALONG_LAST_DIM = True
r"""Whether :func:`dct_filter` runs its FFTs on the signal laid out ``(..., H, d, N)``.

The signal arrives as ``(..., H, N, d)``, its sequence axis strided by ``d``. cuFFT
transforms batches of rows in its own layouts, so ``torch.fft`` copies a strided input into
one before the forward FFT, and the inverse FFT's input is copied as well (cuFFT's
complex-to-real transform overwrites it). The kernel table of the compiled lst-dct layer at
``(8, 65536, 256)`` on an H200 (``results/profile/kernels_layer_64k_compiled.md``) has 3.9 ms
of its 16.7 ms in generic non-vectorised elementwise kernels run outside the compiled graph
and 1.0 ms in device-to-device copies. With this flag the transpose is done by the Makhoul
reordering, a pass over the signal that happens anyway (and that ``torch.compile`` fuses with
the gates that produce the signal), so both FFTs work on contiguous rows. The filter is the
same operator either way; only the layout of the intermediates differs. With the flag on (and
the benchmark's loss replaced by a fixed output gradient) the same layer took 11.30 ms
(``results/scaling_compiled/kernels.md``). Launched eagerly, the strided layout is the faster
one, by 7-9 % at N >= 16384 (``results/paths_probe.md``, run of 2026-12-02); under
``torch.compile``, the case this layout is for, the two have not yet been timed side by side
(``python -m experiments.probe_paths --tables lst --timing compiled`` has both as columns)."""


def dct_filter(u: Tensor, gains: Tensor) -> Tensor:
    """Orthonormal DCT-II filter ``C^T diag(gains) C`` along dim -2 (one rFFT pair).

    Args:
        u: ``(..., H, N, d)`` real signal; float16 and bfloat16 are filtered in float32
            (cuFFT has no bfloat16) and kept for the backward in their own precision.
        gains: ``(H, N)`` real gains of the DCT-II coefficients, in ``compute_dtype(u)``.

    Returns:
        ``(..., H, N, d)`` in ``compute_dtype(u)``; with :data:`FFT_ALONG_LAST_DIM` a
        transposed view of an ``(..., H, d, N)`` tensor.
    """
    return _filter_in_layout(u, gains, alternate=False)


def _filter_in_layout(u: Tensor, gains: Tensor, alternate: bool) -> Tensor:
    """:func:`dct_filter` on ``(..., H, N, d)`` in the layout :data:`FFT_ALONG_LAST_DIM` picks.

    With ``alternate``, ``A`` times that filter times ``A``, ``A = diag((-1)^n)``.
    """
    if FFT_ALONG_LAST_DIM:
        return _dct_filter_along(u.transpose(-1, -2), gains, -1, alternate).transpose(-1, -2)
    return _dct_filter_along(u, gains, -2, alternate)


def _dct_filter_along(u: Tensor, gains: Tensor, dim: int, alternate: bool = False) -> Tensor:
    """:func:`dct_filter` along ``dim``; -2 for ``(..., H, N, d)``, -1 for ``(..., H, d, N)``.

    With ``alternate``, ``A C^T diag(gains) C A`` with ``A = diag((-1)^n)`` (:func:`dst_filter`).
    """
    return _DCTFilter.apply(u, gains, dim, alternate)


class _DCTFilter(torch.autograd.Function):
    r"""``y = C^T diag(gains) C u`` along ``dim`` with a backward built from the same filter.

    ``C`` is orthonormal, so the operator is symmetric and the input's gradient is the filter
    applied to the output's gradient :math:`g`: :math:`\partial u = C^T \mathrm{diag}(\Lambda)
    C g`. The gains' gradient is :math:`\partial\Lambda_k = \sum (Cu)_k (Cg)_k` over every
    row (batch items and channels of a head). Both are read off the rFFTs of the reordered
    signals (:func:`_gain_gradient`), so the backward is one rFFT of :math:`g` and one inverse
    rFFT, with pointwise work between them that the compiler fuses, where autograd's own
    formulas for the inverse rFFT and the complex filter add copies and complex kernels that
    Inductor runs one by one.

    With ``alternate`` the operator is :math:`A C^T \mathrm{diag}(\Lambda) C A`,
    :math:`A = \mathrm{diag}((-1)^n)`, still symmetric, so the same backward holds with
    :math:`A u` and :math:`A g` for :math:`u` and :math:`g`. Makhoul's reordering ``P`` puts
    the even samples first and the odd ones (reversed) after them, so :math:`P A = S P` with
    :math:`S` the sign flip of the reordered signal's second part (its last
    :math:`\lfloor N/2 \rfloor` entries) and :math:`A P^{-1} = P^{-1} S`: the signs are
    applied in place to the reordered copies the filter makes anyway, not in passes of their
    own over the signal.

    What the backward keeps: eagerly, for float32 and float64 input, the forward's spectrum
    (the size of ``u``); otherwise ``u`` itself, in its own precision, which the backward
    transforms again (one more rFFT) when the gains need a gradient. Under ``torch.compile``
    that is always the choice, so a compiled step keeps neither the float32 spectrum nor a
    float32 copy of bfloat16 ``u`` (the compiler may even recompute ``u`` from the gates that
    make it).
    """

    @staticmethod
    def forward(ctx, u: Tensor, gains: Tensor, dim: int, alternate: bool) -> Tensor:  # noqa: D102
        ctx.dim, ctx.n, ctx.alternate = dim, u.shape[dim], alternate
        spec = _reordered_bins(u, dim, alternate)  # bins along dim, unscaled
        ctx.keeps_spectrum = not torch.compiler.is_compiling() and u.dtype == compute_dtype(u)
        ctx.u_dtype = u.dtype
        ctx.save_for_backward(spec if ctx.keeps_spectrum else u, gains)
        return _filter_from_bins(spec, gains, ctx.n, dim, alternate=alternate)

    @staticmethod
    def backward(  # noqa: D102
        ctx, grad: Tensor
    ) -> tuple[Tensor | None, Tensor | None, None, None]:
        kept, gains = ctx.saved_tensors
        dim, n, alternate = ctx.dim, ctx.n, ctx.alternate
        grad_bins = _reordered_bins(grad, dim, alternate)  # bins along dim, unscaled
        du = dg = None
        if ctx.needs_input_grad[0]:
            du = _filter_from_bins(grad_bins, gains, n, dim, alternate)
            du = du.to(ctx.u_dtype)
        if ctx.needs_input_grad[1]:
            if ctx.keeps_spectrum:
                u_bins = kept
            else:
                # Converted before the reordering (the forward reorders first): two graphs
                # for one value, so the compiler recomputes it from the narrow ``u`` instead
                # of keeping the forward's float32 copy alive between the passes.
                u_bins = _reordered_bins(kept.to(compute_dtype(kept)), dim, alternate)
            dg = _gain_gradient(u_bins, grad_bins, n, dim) / n  # (H, N); unscaled bins: x N
            dg = dg.to(gains.dtype)
        return du, dg, None, None


def _reordered_bins(u: Tensor, dim: int, alternate: bool = False) -> Tensor:
    """``RFFT(P u)`` along ``dim``: ``N // 2 + 1`` complex bins of the Makhoul-reordered signal.

    Unscaled (``norm="backward"``): a scaled rFFT would run its scaling as a pass of its own
    over the bins (cuFFT does not scale), where the filter folds every factor into its
    ``(H, bins)`` coefficients (:func:`_filter_from_bins`, :func:`_gain_gradient`). Half
    precision is reordered as it is and transformed in float32 (the reordering moves samples,
    so the order of the two steps does not change a value; what a compiled backward keeps, if
    anything, is then the narrower tensor). With ``alternate``, ``RFFT(P A u) = RFFT(S P u)``
    (:class:`_DCTFilter`).
    """
    v = makhoul_reorder(u, u.dim() + dim)  # u's dtype, a new tensor
    if alternate:
        v = _negate_odd_part(v, dim)
    return torch.fft.rfft(v.to(compute_dtype(v)), dim=dim)  # unscaled


def _negate_odd_part(v: Tensor, dim: int) -> Tensor:
    """``S v``: the last ``N // 2`` entries of a reordered signal along ``dim`` negated.

    They hold the odd samples (Makhoul's reordering), whose signs ``A = diag((-1)^n)`` flips.
    Eagerly in place on ``v`` (a copy the filter made), a pass over half of it; while
    ``torch.compile`` traces, a product with a constant sign vector, which Inductor fuses with
    the reordering's gather or the inverse rFFT's consumer instead of scattering a slice.
    """
    n = v.shape[dim]
    if torch.compiler.is_compiling():
        signs = _odd_part_signs(n, v.dtype, v.device)  # (N,)
        return v * (signs if dim == -1 else signs[:, None])
    v.narrow(dim, (n + 1) // 2, n // 2).neg_()
    return v


@eager_cached(maxsize=64)
def _odd_part_signs(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(1, ..., 1, -1, ..., -1)``: ``(N + 1) // 2`` ones, then ``N // 2`` minus ones."""
    odd_part = torch.arange(n, device=device) >= (n + 1) // 2  # (N,) bool
    return 1.0 - 2.0 * odd_part.to(dtype)


def _filter_from_bins(
    spec: Tensor,
    gains: Tensor,
    n: int,
    dim: int,
    alternate: bool = False,
) -> Tensor:
    """``P^{-1} IRFFT(a V + c conj(V))`` for unscaled ``spec = V``: the filtered signal.

    The inverse rFFT's ``1/N`` is folded into the ``(H, bins)`` coefficients ``a`` and ``c``
    and the inverse runs unscaled (``norm="forward"``), so no pass over the signal scales it
    (cuFFT does not scale; ``torch.fft`` would add a kernel that does). With ``alternate``,
    ``A P^{-1} = P^{-1} S`` follows the inverse rFFT (:class:`_DCTFilter`).
    """
    bins = n // 2 + 1
    rev = torch.cat([gains[:, :1], gains[:, 1:].flip(-1)], dim=-1)[:, :bins]  # Lambda_{N-k}
    head = gains[:, :bins]
    a = (head + rev) * (0.5 / n)  # (H, bins), the inverse's 1/N included
    c = _rotation(n, gains.dtype, spec.device) * ((head - rev) * (0.5 / n))  # (H, bins) complex
    a, c = (a[:, :, None], c[:, :, None]) if dim == -2 else (a[:, None, :], c[:, None, :])
    v = torch.fft.irfft(_filter_bins(spec, a, c), n=n, dim=dim, norm="forward")  # unscaled
    if alternate:
        v = _negate_odd_part(v, dim)
    return makhoul_unreorder(v, v.dim() + dim)


def _gain_gradient(u_bins: Tensor, g_bins: Tensor, n: int, dim: int) -> Tensor:
    r"""The gains' gradient ``sum (C u)_k (C g)_k`` per head from the reordered signals' rFFTs.

    With :math:`V = \mathrm{RFFT}(P x)` (unscaled) and :math:`W_k = \omega_k V_k`,
    :math:`\omega_k = e^{-i\pi k/(2N)}` (:math:`k = 0..\lfloor N/2 \rfloor`), Makhoul's
    identity gives the unscaled DCT-II :math:`\tilde X_k = \mathrm{Re}\,W_k`, and for
    :math:`k = N - j`, :math:`j = 1..\lfloor (N-1)/2 \rfloor`, Hermitian symmetry
    :math:`V_{N-j} = \overline{V_j}` gives :math:`\tilde X_{N-j} = -\mathrm{Im}\,W_j`. The
    orthonormal coefficients are :math:`s_k \tilde X_k` with :math:`s_0^2 = 1/N`,
    :math:`s_k^2 = 2/N`, so

    .. math:: \partial\Lambda_k = s_k^2 \sum \mathrm{Re}\,W^u_k\,\mathrm{Re}\,W^g_k,\quad
        \partial\Lambda_{N-j} = s_{N-j}^2 \sum \mathrm{Im}\,W^u_j\,\mathrm{Im}\,W^g_j

    (the two signs cancel), summed over batch items and a head's channels. On ``ortho`` bins
    (:math:`V / \sqrt N`) the weights :math:`N s_k^2` are 1 for :math:`k = 0` and 2 otherwise.
    With
    :math:`\mathrm{Re}\,a\,\mathrm{Re}\,b = \tfrac12 \mathrm{Re}(a \bar b + a b)`,
    :math:`\mathrm{Im}\,a\,\mathrm{Im}\,b = \tfrac12 \mathrm{Re}(a \bar b - a b)`,
    :math:`|\omega_k| = 1` and the sums taken first,

    .. math:: \sum \mathrm{Re}\,W^u_k\,\mathrm{Re}\,W^g_k
        = \tfrac12 \mathrm{Re}\big(P_k + \omega_k^2 Q_k\big),\quad
        \sum \mathrm{Im}\,W^u_k\,\mathrm{Im}\,W^g_k
        = \tfrac12 \mathrm{Re}\big(P_k - \omega_k^2 Q_k\big),

    :math:`P = \sum V^u \overline{V^g}`, :math:`Q = \sum V^u V^g`: two products and two
    reductions over the bins (in complex arithmetic eagerly; on the real views, one fused
    reduction, while the compiler traces), then per-head work on ``(H, bins)``.

    Args:
        u_bins: ``(..., H, bins, d)`` (``dim = -2``) or ``(..., H, d, bins)`` complex.
        g_bins: the same shape.
        n: Signal length ``N``.
        dim: The bins' dim, -2 or -1.

    Returns:
        ``(H, N)`` real: :math:`\partial\Lambda` when both inputs are ``ortho`` bins
        (:math:`V / \sqrt N`, so the weights :math:`N s_k^2` are 1 and 2); each unscaled
        input multiplies it by :math:`\sqrt N`.
    """
    if dim == -2:
        u_bins, g_bins = u_bins.transpose(-1, -2), g_bins.transpose(-1, -2)  # (..., H, d, bins)
    rows = [i for i in range(u_bins.dim()) if i not in (u_bins.dim() - 3, u_bins.dim() - 1)]
    if torch.compiler.is_compiling():
        ur, ui = torch.view_as_real(u_bins).unbind(-1)  # (..., H, d, bins) each
        gr, gi = torch.view_as_real(g_bins).unbind(-1)
        terms = torch.stack([ur * gr, ui * gi, ur * gi + ui * gr]).sum([r + 1 for r in rows])
        rr, ii, cross = terms.unbind(0)  # (H, bins) each
        p, q_re, q_im = rr + ii, rr - ii, cross  # P real part, Q (H, bins)
    else:
        p = (u_bins * g_bins.conj()).sum(rows).real  # (H, bins)
        q = (u_bins * g_bins).sum(rows)  # (H, bins) complex
        q_re, q_im = q.real, q.imag
    cos, sin = _double_twiddle(n, p.dtype, p.device)  # (bins,): omega_k^2
    rotated = cos * q_re - sin * q_im  # Re(omega^2 Q), (H, bins)
    re = 0.5 * (p + rotated)  # (H, bins)
    im = 0.5 * (p - rotated)
    grad = torch.cat([re, im[:, 1 : (n - 1) // 2 + 1].flip(-1)], dim=-1)  # (H, N)
    return torch.cat([grad[:, :1], 2.0 * grad[:, 1:]], dim=-1)  # (H, N)


@eager_cached(maxsize=64)
def _double_twiddle(n: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` of ``-pi k / n`` for k = 0..n//2 (``exp(-i pi k / (2n))^2``)."""
    phase = torch.arange(n // 2 + 1, dtype=torch.float64, device=device) * (-math.pi / n)
    return phase.cos().to(dtype), phase.sin().to(dtype)


def _filter_bins(spec: Tensor, a: Tensor, c: Tensor) -> Tensor:
    r"""``a z + c \bar z`` for complex bins ``z = x + i y``, real ``a`` and complex ``c``.

    Eagerly in complex arithmetic. While ``torch.compile`` traces, in real arithmetic on the
    bins' real view, :math:`\mathrm{Re} = (a + c_r) x + c_i y`,
    :math:`\mathrm{Im} = c_i x + (a - c_r) y`: Inductor generates no code for complex
    operators (each runs as its own eager kernel) but can fuse this with the pointwise work
    around it. On CPU (2 cores, float32, ``(4, 4, 16384, 64)``, forward and backward of
    :func:`dct_filter`) the compiled filter took 1434 ms this way against 1759 ms in complex
    arithmetic; eagerly the complex form is the faster (1849 against 2169 ms).

    Args:
        spec: ``(..., H, bins, d)`` or ``(..., H, d, bins)`` complex.
        a: real, ``(H, bins, 1)`` or ``(H, 1, bins)`` (broadcasting against ``spec``).
        c: complex, shaped as ``a``.
    """
    if not torch.compiler.is_compiling():
        return a * spec + c * spec.conj()
    pairs = torch.view_as_real(spec)  # (*spec.shape, 2)
    x, y = pairs[..., 0], pairs[..., 1]  # spec's shape each
    cr, ci = c.real, c.imag  # a's shape each
    out = torch.stack([(a + cr) * x + ci * y, ci * x + (a - cr) * y], dim=-1)
    return torch.view_as_complex(out)  # spec's shape


@eager_cached(maxsize=64)
def _rotation(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """exp(i pi k / n) for k = 0..n//2 (complex, cached)."""
    phase = torch.arange(n // 2 + 1, dtype=torch.float64, device=device) * (math.pi / n)
    rot = torch.polar(torch.ones_like(phase), phase)
    return rot.to(dtype=torch.complex128 if dtype == torch.float64 else torch.complex64)


def dst_filter(u: Tensor, gains: Tensor) -> Tensor:
    """Orthonormal DST-II filter along dim -2: ``A M_dct(reversed gains) A``.

    ``A = diag((-1)^n)``: the DST-II matrix is ``S = R C A`` with ``R`` the reversal of the
    coefficients, so ``S^T diag(g) S = A C^T diag(R g) C A``. The signs are applied inside the
    DCT filter, on its reordered copies (:class:`_DCTFilter`). Dtypes as :func:`dct_filter`.
    """
    return _filter_in_layout(u, gains.flip(-1), alternate=True)


def spectral_filter(
    u: Tensor, gains: Tensor, transform: nn.Module, kind: str | None = None
) -> Tensor:
    """Apply ``M = T^{-1} diag(gains) T`` along the sequence.

    Args:
        u: ``(B, H, N, d)`` signal; float16 and bfloat16 are filtered in float32.
        gains: ``(H, F)`` coefficient gains (from :func:`coefficient_gains`), in
            ``compute_dtype(u)``.
        transform: The kind's module (``dim=-2``).
        kind: ``dct`` or ``dst`` select the fused fast paths; otherwise the transform pair.

    Returns:
        ``(B, H, N, d)`` in ``compute_dtype(u)``.
    """
    if kind == "dct":
        return dct_filter(u, gains)
    if kind == "dst":
        return dst_filter(u, gains)
    u = u.to(compute_dtype(u))  # (B, H, N, d)
    n = u.shape[-2]
    coeffs = transform.transform(u)  # (B, H, F, d), complex for fft
    coeffs = coeffs * gains[:, :, None].to(coeffs.real.dtype)
    if isinstance(transform, FFTTransform):
        return transform.inverse(coeffs, n)  # (B, H, N, d)
    return transform.inverse(coeffs).narrow(-2, 0, n)  # hadamard: crop P -> N


def impulse_response(profile: Tensor, kind: str, transform: nn.Module, n: int) -> Tensor:
    """Causal kernel taps ``h = (M_L e_0)[:n]`` of each head, ``(H, n)`` (see module doc)."""
    length = 2 * n if kind == "fft" else n
    gains = coefficient_gains(profile, kind, length)  # (H, F)
    impulse = torch.zeros(
        1, profile.shape[0], length, 1, dtype=profile.dtype, device=profile.device
    )
    impulse[:, :, 0].fill_(1.0)  # e_0 for every head (fill_: no host-to-device copy)
    return spectral_filter(impulse, gains, transform, kind)[0, :, :n, 0]  # (H, n)


def causal_filter(u: Tensor, taps: Tensor) -> Tensor:
    """Causal convolution of ``u`` (B, H, N, d) with per-head taps (H, N) along the sequence."""
    return causal_conv(u, taps[:, :, None], dim=-2)  # (B, H, N, d)


MATRIX_KINDS = ("dct", "dst", "hadamard")
"""Kinds whose analysis matrix has a closed form (:func:`transform_matrix`)."""


def _phase_dtype(rows: int, n: int) -> torch.dtype:
    """int32 while every phase product ``k (2j + 1)`` (below ``2 rows n``) fits, else int64."""
    return torch.int32 if 2 * rows * n < 2**31 else torch.int64


def transform_matrix(kind: str, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    r"""The orthonormal analysis matrix :math:`A` ``(F, n)`` of a filter kind (column j = T e_j).

    - ``dct`` (DCT-II): :math:`A_{kj} = s_k \cos\big(\pi k (2j + 1) / 2n\big)`,
      :math:`s_0 = \sqrt{1/n}`, :math:`s_k = \sqrt{2/n}`.
    - ``dst`` (DST-II): :math:`A_{kj} = s_k \sin\big(\pi (k + 1)(2j + 1) / 2n\big)`,
      :math:`s_{n-1} = \sqrt{1/n}`, :math:`s_k = \sqrt{2/n}` otherwise.
    - ``hadamard`` (Sylvester order, zero-padded to :math:`P = 2^{\lceil \log_2 n \rceil}`):
      :math:`A_{kj} = (-1)^{\mathrm{popcount}(k \,\&\, j)} / \sqrt{P}`, ``k < P``, ``j < n``.

    :math:`A` is orthonormal (its columns are orthonormal), so the filter of
    :func:`spectral_filter` is :math:`M = A^T \mathrm{diag}(\Lambda) A` (for ``hadamard`` this
    is the cropped ``n x n`` block). Phases are reduced exactly in integers,
    :math:`k(2j+1) \bmod 4n`, before the cosine, so float32 entries are accurate to rounding.
    The matrix is built elementwise on ``device`` (the Hadamard signs from the parity of
    ``k & j``, not by Sylvester doubling on the host), so a compiled graph forms it in one
    fused kernel.
    """
    if kind not in MATRIX_KINDS:
        raise ValueError(f"no closed-form matrix for kind {kind!r}; use one of {MATRIX_KINDS}")
    work = torch.float64 if dtype == torch.float64 else torch.float32
    rows = next_power_of_two(n) if kind == "hadamard" else n
    index = _phase_dtype(rows, n)  # integer phases; then one float buffer, updated in place
    j = torch.arange(n, device=device, dtype=index)[None, :]  # (1, n)
    k = torch.arange(rows, device=device, dtype=index)[:, None]  # (F, 1)
    if kind == "hadamard":
        sign = bit_parity(k & j).to(work)  # (P, n): 0 or 1
        return sign.mul_(-2.0).add_(1.0).mul_(rows**-0.5).to(dtype)
    if kind == "dct":
        a = ((k * (2 * j + 1)) % (4 * n)).to(work)  # (n, n) phase in units of pi / 2n
        a.mul_(math.pi / (2 * n)).cos_()
    else:
        a = (((k + 1) * (2 * j + 1)) % (4 * n)).to(work)  # (n, n)
        a.mul_(math.pi / (2 * n)).sin_()
    a.mul_(2 * ortho_weights(n, kind == "dct", work, device)[:, None])  # row k times s_k
    return a.to(dtype)  # (n, n)


@eager_cached(maxsize=8)
def analysis_matrix(kind: str, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """:func:`transform_matrix`, built once per (kind, n, dtype, device) outside compiled code.

    Eager callers share one cached matrix (no ``(n, n)`` temporaries per call: the phases and
    the float buffer of :func:`transform_matrix` are about 6x the bfloat16 matrix). Inside a
    compiled graph the matrix is built in the graph (:func:`eager_cached`).
    """
    return transform_matrix(kind, n, dtype, device)


def matrix_filter(u: Tensor, gains: Tensor, kind: str) -> Tensor:
    r"""The filter :math:`M u = A^T (\Lambda \odot A u)` along dim -2 as two GEMMs.

    :math:`A` is :func:`transform_matrix` in ``u``'s dtype (:func:`analysis_matrix`: cached in
    eager code); all heads and batch items share it,
    so each product is one ``(F, n) x (n, B H d)`` matrix multiply (tensor cores in half
    precision). Exactly the operator of :func:`spectral_filter` for the same kind and gains.

    Args:
        u: ``(B, H, N, d)`` real signal.
        gains: ``(H, F)`` coefficient gains (:func:`coefficient_gains`).
        kind: One of :data:`MATRIX_KINDS`.

    Returns:
        ``(B, H, N, d)``.
    """
    b, h, n, d = u.shape
    a = analysis_matrix(kind, n, u.dtype, u.device)  # (F, N)
    f = a.shape[0]
    cols = u.permute(2, 0, 1, 3).reshape(n, b * h * d)  # (N, B*H*d)
    coef = (a @ cols).view(f, b, h, d) * gains.t()[:, None, :, None].to(u.dtype)  # (F, B, H, d)
    out = a.t() @ coef.reshape(f, b * h * d)  # (N, B*H*d)
    return out.view(n, b, h, d).permute(1, 2, 0, 3)  # (B, H, N, d)


def _channels_last(u: Tensor) -> Tensor:
    """``(B, H, N, d)`` as ``(B, N, H d)``: a view when ``u`` is laid out as ``(B, N, H, d)``."""
    b, h, n, d = u.shape
    return u.transpose(1, 2).reshape(b, n, h * d)  # (B, N, H*d)


def factored_filter(u: Tensor, gains: Tensor, kind: str) -> Tensor:
    r"""The filter :math:`M u` of a :data:`MATRIX_KINDS` kind as small GEMMs, ``O(N \sqrt N)``.

    The sequence axis is factored (:mod:`spectrans.transforms.factored`) and the signal is
    handled as ``(B, N, H d)`` (the layout the projections produce, so no transpose), every
    head sharing the small matrices and only the gains differing per head:

    - ``hadamard``: zero-pad to ``P``, :math:`H_P = H_a \otimes H_b` (two GEMMs), gains
      :math:`\Lambda / P` in natural order, :math:`H_P` again, crop: the operator
      :math:`\big(H_P\, \mathrm{diag}(\Lambda)\, H_P / P\big)_{[:N, :N]}`.
    - ``dct``: :math:`M = T^T \mathrm{diag}(\Lambda) T` with :math:`T = \mathrm{diag}(2 w) R`
      (``w`` = :func:`~spectrans.transforms.cosine.ortho_weights`, :math:`R` the four-step
      map :func:`~spectrans.transforms.factored.dct2_fourstep`), so
      :math:`M u = R^T (4 w^2 \Lambda \odot R u)` with the gains permuted to the four-step
      order :math:`k = k_1 + N_1 k_2`.
    - ``dst``: :math:`M_{dst}(\Lambda) = A\, M_{dct}(\mathrm{reversed}\ \Lambda)\, A`
      (``A`` the alternating signs, applied inside :math:`R` and :math:`R^T`).

    Prime ``N`` (no four-step split) uses :func:`matrix_filter`. Computed in ``u``'s dtype.

    Args:
        u: ``(B, H, N, d)`` real signal.
        gains: ``(H, F)`` coefficient gains (:func:`coefficient_gains`).
        kind: One of :data:`MATRIX_KINDS`.

    Returns:
        ``(B, H, N, d)`` (laid out as ``(B, N, H, d)``).
    """
    b, h, n, d = u.shape
    x = _channels_last(u)  # (B, N, H*d)
    g = gains.to(u.dtype)  # (H, F)
    if kind == "hadamard":
        p = next_power_of_two(n)
        if p != n:
            x = F.pad(x, (0, 0, 0, p - n))  # (B, P, H*d)
        coef = hadamard_factored(x).view(b, p, h, d) * (g.t() / p)[:, :, None]  # (B, P, H, d)
        out = hadamard_factored(coef.view(b, p, h * d)).narrow(1, 0, n)  # (B, N, H*d)
        return out.view(b, n, h, d).transpose(1, 2)  # (B, H, N, d)
    if kind not in ("dct", "dst"):
        raise ValueError(f"no factored filter for kind {kind!r}; use one of {MATRIX_KINDS}")
    n1, n2 = fourstep_split(n)
    if n1 == 1:
        return matrix_filter(u, gains, kind)
    sine = kind == "dst"
    w2 = 4 * ortho_weights(n, True, g.dtype, g.device) ** 2  # (N,): T = diag(2 w) R
    g = (g.flip(-1) if sine else g) * w2  # (H, N), natural order k
    g = g.view(h, n2, n1).permute(2, 1, 0)[..., None]  # (N1, N2, H, 1): k = k1 + N1 k2
    coef = dct2_fourstep(x, sine).view(b, n1, n2, h, d) * g  # (B, N1, N2, H, d)
    out = dct2_fourstep_adjoint(coef.view(b, n1, n2, h * d), sine)  # (B, N, H*d)
    return out.view(b, n, h, d).transpose(1, 2)  # (B, H, N, d)
