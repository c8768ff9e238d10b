r"""Discrete wavelet transform (DWT) and its inverse along one axis: Haar and Daubechies db1-db8.

Filters (:func:`filter_bank`), from the scaling filter :math:`h` of length :math:`L`
(PyWavelets' ``rec_lo``): decomposition low-pass :math:`\tilde h_j = h_{L-1-j}`, high-pass
:math:`\tilde g_j = (-1)^{j+1} h_j`; reconstruction low-pass :math:`h`, high-pass
:math:`g_j = \tilde g_{L-1-j}`. One analysis level is

.. math::  a_k = \sum_j \tilde h_j\, \bar x_{2k + 1 - j}, \qquad
    d_k = \sum_j \tilde g_j\, \bar x_{2k + 1 - j},

with :math:`\bar x` the signal extended past its ends by the boundary mode, exactly as
PyWavelets (``pywt.dwt``) computes it:

- ``symmetric`` (pywt ``symmetric``): half-sample symmetric extension
  ``... x1 x0 | x0 x1 ... x_{N-1} | x_{N-1} x_{N-2} ...``;
  :math:`\lfloor (N + L - 1) / 2 \rfloor` coefficients per band. Reconstruction
  (pywt ``idwt``) is the transposed filter bank, keeping the central samples.
- ``periodic`` (pywt ``periodization``): circular extension, :math:`\lceil N/2 \rceil`
  coefficients per band (an odd signal first repeats its last sample). For even ``N`` the
  analysis matrix :math:`W` is orthogonal (orthonormal filters, shifts by two), so the
  inverse is the transpose: :math:`W^{-1} = W^\top`, which is how :func:`idwt` computes it.

Multi-level (:func:`wavedec`, :func:`waverec`) recurses on the approximation, giving
``[a_J, d_J, ..., d_1]`` (pywt order). Reconstruction crops each level to the length its
input had, so ``waverec(wavedec(x)) == x`` for every ``N``.

:class:`WaveletTransform` is the orthonormal sequence transform used as an LST filter
kind: the signal is zero-padded to :math:`P`, the next multiple of :math:`2^J`, and the
periodic ``J``-level DWT of length ``P`` is an orthogonal ``P x P`` matrix :math:`T`, so
``T^{-1} = T^T`` and :math:`M = T^\top \mathrm{diag}(\Lambda) T` followed by cropping to
``N`` is a symmetric filter (``Λ = 1`` gives the identity). Its ``P`` coefficients are
ordered coarse to fine (``a_J, d_J, ..., d_1``), roughly low to high frequency.

Cost: ``O(N L)`` per level, ``O(N L)`` in all (the levels halve).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spectrans.transforms.constants import graph_constant
from spectrans.transforms.precision import compute_dtype
from spectrans.transforms.wavelet_filters import SCALING

BoundaryMode = Literal["symmetric", "periodic"]
WAVELETS = tuple(SCALING)
MODES = ("symmetric", "periodic")


def _check(wavelet: str, mode: str) -> None:
    if wavelet not in SCALING:
        raise ValueError(f"unknown wavelet {wavelet!r}; choose one of: {', '.join(WAVELETS)}")
    if mode not in MODES:
        raise ValueError(f"unknown boundary mode {mode!r}; choose one of: {', '.join(MODES)}")


@graph_constant(maxsize=64)
def _bank(wavelet: str, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Analysis weights ``(2, 1, L)`` (for conv1d) and synthesis weights ``(2, 1, L)``.

    Built on the host and copied to ``device``, once per argument set; a compiled graph holds
    them as constants (:func:`~spectrans.transforms.constants.graph_constant`).
    """
    h = torch.tensor(SCALING[wavelet], dtype=torch.float64)
    length = h.numel()
    dec_lo = h.flip(0)
    dec_hi = h * torch.tensor([(-1.0) ** (j + 1) for j in range(length)], dtype=torch.float64)
    rec_lo, rec_hi = h, dec_hi.flip(0)
    # conv1d is a correlation: flipping the decomposition filters makes it a convolution
    analysis = torch.stack([dec_lo.flip(0), dec_hi.flip(0)])[:, None]  # (2, 1, L)
    synthesis = torch.stack([rec_lo, rec_hi])[:, None]  # (2, 1, L)
    return analysis.to(device, dtype), synthesis.to(device, dtype)


def filter_bank(wavelet: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(dec_lo, dec_hi, rec_lo, rec_hi)`` as float64 tensors (pywt's ``filter_bank``)."""
    _check(wavelet, "periodic")
    analysis, synthesis = _bank(wavelet, torch.float64, torch.device("cpu"))
    return analysis[0, 0].flip(0), analysis[1, 0].flip(0), synthesis[0, 0], synthesis[1, 0]


def filter_length(wavelet: str) -> int:
    """Number of taps ``L`` of the wavelet's filters."""
    _check(wavelet, "periodic")
    return len(SCALING[wavelet])


def max_level(n: int, wavelet: str) -> int:
    r"""Deepest useful level for ``n`` samples: :math:`\lfloor\log_2(n / (L - 1))\rfloor`, >= 0.

    The same rule as ``pywt.dwt_max_level``; below it every symmetric-mode level has at least
    ``L - 1`` input samples.
    """
    taps = filter_length(wavelet)
    if n < taps - 1 or taps < 2:
        return 0
    return (n // (taps - 1)).bit_length() - 1


def _symmetric_index(n: int, left: int, right: int, device: torch.device) -> Tensor:
    """Indices of the half-sample symmetric extension (period ``2n``), any pad width."""
    idx = torch.arange(-left, n + right, device=device) % (2 * n)
    return torch.where(idx < n, idx, 2 * n - 1 - idx)


def _periodic_index(m: int, taps: int, device: torch.device) -> Tensor:
    """Indices of the circular extension that the periodised analysis correlates with."""
    return (torch.arange(-(taps - 1), m, device=device) + taps // 2) % m


def _to_last(x: Tensor, dim: int) -> tuple[Tensor, tuple[int, ...]]:
    """Move ``dim`` last and flatten the rest: ``(M, N)`` and the moved shape."""
    moved = x.movedim(dim, -1)
    return moved.reshape(-1, moved.shape[-1]), tuple(moved.shape[:-1])


def _from_last(y: Tensor, lead: tuple[int, ...], dim: int) -> Tensor:
    return y.reshape(*lead, y.shape[-1]).movedim(-1, dim)


def _dwt_last(x: Tensor, wavelet: str, mode: str) -> tuple[Tensor, Tensor]:
    """One analysis level of ``x`` (M, N) along the last axis: ``(a, d)``, each (M, K)."""
    analysis, _ = _bank(wavelet, x.dtype, x.device)
    taps, n = analysis.shape[-1], x.shape[-1]
    if mode == "symmetric":
        out = (n + taps - 1) // 2
        pad = 2 * (out - 1) - n + taps
        xp = x[:, _symmetric_index(n, pad // 2, (pad + 1) // 2, x.device)]  # (M, 2K - 2 + L)
    else:
        if n % 2:
            x = torch.cat([x, x[:, -1:]], dim=1)  # pywt periodization: repeat the last sample
        out = x.shape[-1] // 2
        xp = x[:, _periodic_index(x.shape[-1], taps, x.device)]  # (M, 2K + L - 1)
    y = F.conv1d(xp[:, None], analysis, stride=2)[..., :out]  # (M, 2, K)
    return y[:, 0], y[:, 1]


def _idwt_last(a: Tensor, d: Tensor, wavelet: str, mode: str, n: int) -> Tensor:
    """Inverse of :func:`_dwt_last` for a length-``n`` input: ``(M, n)``."""
    analysis, synthesis = _bank(wavelet, a.dtype, a.device)
    taps = synthesis.shape[-1]
    coeffs = torch.stack([a, d], dim=1)  # (M, 2, K)
    if mode == "symmetric":
        y = F.conv_transpose1d(coeffs, synthesis, stride=2, padding=taps - 2)  # (M, 1, 2K-L+2)
        return y[:, 0, :n]
    m = 2 * a.shape[-1]  # even analysis length
    y = F.conv_transpose1d(coeffs, analysis, stride=2)[:, 0]  # W^T on the extension
    index = _periodic_index(m, taps, a.device)[: y.shape[-1]]
    x = torch.zeros(a.shape[0], m, dtype=y.dtype, device=a.device)  # y's dtype under autocast
    x = x.index_add(1, index, y)  # fold the circular extension back: (M, m)
    return x[:, :n]


def dwt(
    x: Tensor, wavelet: str = "db4", mode: BoundaryMode = "symmetric", dim: int = -1
) -> tuple[Tensor, Tensor]:
    """Single-level DWT along ``dim``: approximation and detail coefficients (pywt ``dwt``)."""
    _check(wavelet, mode)
    flat, lead = _to_last(x.to(compute_dtype(x)), dim)
    a, d = _dwt_last(flat, wavelet, mode)
    return _from_last(a, lead, dim).to(x.dtype), _from_last(d, lead, dim).to(x.dtype)


def idwt(
    a: Tensor,
    d: Tensor,
    wavelet: str = "db4",
    mode: BoundaryMode = "symmetric",
    length: int | None = None,
    dim: int = -1,
) -> Tensor:
    """Inverse single-level DWT along ``dim``; ``length`` crops to the original length.

    Without ``length`` the output has pywt's length: ``2K - L + 2`` (symmetric) or ``2K``
    (periodic).
    """
    _check(wavelet, mode)
    fa, lead = _to_last(a.to(compute_dtype(a)), dim)
    fd, _ = _to_last(d.to(fa.dtype), dim)
    k, taps = fa.shape[-1], filter_length(wavelet)
    full = 2 * k - taps + 2 if mode == "symmetric" else 2 * k
    y = _idwt_last(fa, fd, wavelet, mode, full if length is None else length)
    return _from_last(y, lead, dim).to(a.dtype)


def wavedec(
    x: Tensor,
    wavelet: str = "db4",
    levels: int = 1,
    mode: BoundaryMode = "symmetric",
    dim: int = -1,
) -> list[Tensor]:
    """Multi-level DWT along ``dim``: ``[a_J, d_J, ..., d_1]`` (pywt ``wavedec``)."""
    _check(wavelet, mode)
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    flat, lead = _to_last(x.to(compute_dtype(x)), dim)
    details = []
    for _ in range(levels):
        flat, d = _dwt_last(flat, wavelet, mode)
        details.append(d)
    coeffs = [flat, *reversed(details)]
    return [_from_last(c, lead, dim).to(x.dtype) for c in coeffs]


def level_lengths(n: int, wavelet: str, levels: int, mode: BoundaryMode) -> list[int]:
    """Input length of each analysis level, finest first: ``[n, n_1, ..., n_{J-1}]``."""
    taps, lengths = filter_length(wavelet), []
    for _ in range(levels):
        lengths.append(n)
        n = (n + taps - 1) // 2 if mode == "symmetric" else (n + 1) // 2
    return lengths


def waverec(
    coeffs: list[Tensor],
    wavelet: str = "db4",
    mode: BoundaryMode = "symmetric",
    length: int | None = None,
    dim: int = -1,
) -> Tensor:
    """Inverse of :func:`wavedec`; ``length`` (the original ``N``) crops every level exactly.

    Without ``length`` each level keeps pywt's rule (drop one approximation sample when it is
    one longer than the next detail band), so the output matches ``pywt.waverec``.
    """
    _check(wavelet, mode)
    a, lead = _to_last(coeffs[0].to(compute_dtype(coeffs[0])), dim)
    details = [_to_last(c.to(a.dtype), dim)[0] for c in coeffs[1:]]
    taps = filter_length(wavelet)
    sizes = level_lengths(length, wavelet, len(details), mode)[::-1] if length is not None else None
    for level, d in enumerate(details):
        if sizes is not None:
            n = sizes[level]
        else:
            if a.shape[-1] == d.shape[-1] + 1:
                a = a[:, :-1]
            k = a.shape[-1]
            n = 2 * k - taps + 2 if mode == "symmetric" else 2 * k
        a = _idwt_last(a, d, wavelet, mode, n)
    return _from_last(a, lead, dim).to(coeffs[0].dtype)


def band_lengths(n: int, wavelet: str, levels: int, mode: BoundaryMode) -> list[int]:
    """Coefficients per band of :func:`wavedec` of ``n`` samples: ``[a_J, d_J, ..., d_1]``."""
    lengths = level_lengths(n, wavelet, levels + 1, mode)  # [n, n_1, ..., n_J]
    return [lengths[-1], *reversed(lengths[1:])]  # level j's outputs are n_j long


def wavelet_matrices(
    n: int, wavelet: str, levels: int, mode: BoundaryMode, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    r"""The ``levels``-level DWT of ``n`` samples and its inverse as matrices.

    ``A`` ``(C, n)`` maps a signal to its concatenated coefficients ``[a_J, d_J, ..., d_1]``
    (:func:`wavedec`, :func:`band_lengths` rows per band, ``C`` their sum) and ``R`` ``(n, C)``
    maps coefficients back (:func:`waverec` with ``length=n``), so ``R A = I`` and
    :math:`R\,\mathrm{diag}(g)\,A` is the filter that scales each coefficient by ``g``. Both
    are formed in float64 by applying the transforms to the columns of the identity (so they
    are the operators of the fast transforms, boundary handling included), then cast to
    ``dtype``. :func:`wavelet_operator` caches them.
    """
    _check(wavelet, mode)
    eye = torch.eye(n, dtype=torch.float64, device=device)  # (n, n): row j is e_j
    analysis = torch.cat(wavedec(eye, wavelet, levels, mode), dim=-1).t()  # (C, n)
    sizes = band_lengths(n, wavelet, levels, mode)
    unit = torch.eye(sum(sizes), dtype=torch.float64, device=device)  # (C, C)
    bands = list(torch.split(unit, sizes, dim=-1))  # row c: the unit coefficient c
    synthesis = waverec(bands, wavelet, mode, n).t()  # (n, C): column c is R e_c
    return analysis.to(dtype), synthesis.to(dtype)


@graph_constant(maxsize=16)
def wavelet_operator(
    n: int, wavelet: str, levels: int, mode: BoundaryMode, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    """:func:`wavelet_matrices`, built once per argument set and reused.

    A compiled graph takes the cached matrices as constants (built when the graph is traced)
    instead of forming them again on every call
    (:func:`~spectrans.transforms.constants.graph_constant`).
    """
    return wavelet_matrices(n, wavelet, levels, mode, dtype, device)


class DWT1D(nn.Module):
    """Multi-level DWT along ``dim`` as a parameter-free module.

    Args:
        wavelet: ``haar`` or ``db1``..``db8``.
        levels: Decomposition levels ``J``.
        mode: ``symmetric`` or ``periodic``.
        dim: The axis transformed.
    """

    def __init__(
        self,
        wavelet: str = "db4",
        levels: int = 1,
        mode: BoundaryMode = "symmetric",
        dim: int = -1,
    ) -> None:
        super().__init__()
        _check(wavelet, mode)
        self.wavelet, self.levels, self.mode, self.dim = wavelet, levels, mode, dim

    def forward(self, x: Tensor) -> list[Tensor]:
        """``[a_J, d_J, ..., d_1]``."""
        return wavedec(x, self.wavelet, self.levels, self.mode, self.dim)

    def inverse(self, coeffs: list[Tensor], length: int) -> Tensor:
        """Reconstruct the length-``length`` signal."""
        return waverec(coeffs, self.wavelet, self.mode, length, self.dim)

    def extra_repr(self) -> str:
        """Wavelet, levels, mode and axis."""
        return f"wavelet={self.wavelet}, levels={self.levels}, mode={self.mode}, dim={self.dim}"


class WaveletTransform(nn.Module):
    r"""Orthonormal periodic ``J``-level DWT along ``dim`` (default the sequence axis, -2).

    ``transform`` zero-pads ``N`` to :math:`P = 2^J \lceil N / 2^J \rceil` and returns the
    ``P`` coefficients ``[a_J, d_J, ..., d_1]`` concatenated; ``inverse`` is the transpose and
    returns ``P`` samples (crop to ``N``). See the module docstring.
    """

    def __init__(self, wavelet: str = "db4", levels: int = 3, dim: int = -2) -> None:
        super().__init__()
        _check(wavelet, "periodic")
        self.wavelet, self.levels, self.dim = wavelet, levels, dim

    def num_frequencies(self, n: int) -> int:
        """Coefficients for ``n`` samples: ``n`` rounded up to a multiple of ``2^J``."""
        block = 1 << self.levels
        return -(-n // block) * block

    def transform(self, x: Tensor) -> Tensor:
        """``(..., N, ...)`` -> ``(..., P, ...)`` coefficients along ``dim``."""
        n = x.shape[self.dim]
        pad = self.num_frequencies(n) - n
        if pad:
            shape = list(x.shape)
            shape[self.dim] = pad
            x = torch.cat([x, x.new_zeros(shape)], dim=self.dim)
        return torch.cat(wavedec(x, self.wavelet, self.levels, "periodic", self.dim), self.dim)

    def inverse(self, y: Tensor) -> Tensor:
        """Transpose of :meth:`transform`: ``(..., P, ...)`` -> ``(..., P, ...)`` samples."""
        p = y.shape[self.dim]
        sizes = [p >> self.levels] + [p >> j for j in range(self.levels, 0, -1)]
        coeffs = list(torch.split(y, sizes, dim=self.dim))
        return waverec(coeffs, self.wavelet, "periodic", p, self.dim)

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`transform`."""
        return self.transform(x)

    def extra_repr(self) -> str:
        """Wavelet, levels and axis."""
        return f"wavelet={self.wavelet}, levels={self.levels}, dim={self.dim}"
