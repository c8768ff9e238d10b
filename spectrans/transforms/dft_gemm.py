r"""FNet's mixing :math:`y = \mathrm{Re}(F_N\, x\, F_D)` as two dense GEMMs on the half spectrum.

With :math:`F_m = C_m - i S_m` (:math:`C_{jk} = \cos(2\pi jk/m)`, :math:`S_{jk} =
\sin(2\pi jk/m)`, both symmetric) and ``x`` real of shape ``(B, N, D)``:

1. Hidden DFT of the half spectrum, :math:`k < H = \lfloor D/2 \rfloor + 1`, one GEMM:
   :math:`P = x\,[C_{D,h} \mid S_{D,h}]` ``(B, N, 2H)``, so :math:`x F_D = P_c - i P_s`
   on those columns.
2. Real part of the sequence DFT, :math:`Y_h = \mathrm{Re}\big(F_N (P_c - i P_s)\big)
   = C_N P_c - S_N P_s` ``(B, N, H)``, with the rows folded: :math:`C_{N-k,\cdot} = C_{k,\cdot}`
   and :math:`S_{N-k,\cdot} = -S_{k,\cdot}`, so one batched GEMM of the first
   :math:`R = \lfloor N/2 \rfloor + 1` rows, :math:`A = C_{N,r} P_c` and :math:`Z = S_{N,r} P_s`
   ``(B, 2, R, H)``, gives :math:`Y_k = A_k - Z_k` for :math:`k < R` and
   :math:`Y_{N-k} = A_k + Z_k` for :math:`0 < k \le (N - 1)/2`.
3. The other columns from the Hermitian symmetry of a real signal's 2-D spectrum:
   :math:`y_{n, D-k} = y_{(-n) \bmod N,\, k}` for :math:`0 < k < D - H + 1`.

Cost :math:`2 N D \cdot 2H + 2 \cdot 2 R N H \approx N D (2D + N)` flops per batch item (half
the sequence product's of the unfolded :math:`[C_N \mid -S_N]`), all in tensor-core GEMMs (the
``(2, R, N)`` and ``(D, 2H)`` matrices are shared by every batch item), against
``O(N D log(N D))`` for the FFT: more arithmetic, but on tensor cores and the same for every
length, where cuFFT's time depends on the length's factors (one ListOps layer: 2.04 ms at
N = 2001 = 3 * 23 * 29 against 1.47 ms at 2000, ``results/paths_probe.md``). The map is real,
linear and its own adjoint (:math:`C, S` symmetric), so the backward is the same two GEMMs on
the output gradient and nothing but the dtype is saved.

Precision: the products run in :func:`~spectrans.transforms.precision.matmul_dtype` (the
autocast dtype under autocast, else the input's dtype), with the matrices built in that dtype
from phases reduced exactly in integers (:math:`jk \bmod m`) and evaluated in float32
(float64 for float64 inputs). In bfloat16 the result carries bfloat16 rounding of ``P`` and of
the matrix entries (relative error about :math:`2^{-8}`), like the other GEMM paths.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spectrans.transforms.constants import eager_cached
from spectrans.transforms.fft import real_from_half_spectrum
from spectrans.transforms.precision import matmul_dtype


def _cos_sin(
    rows: int, cols: int, period: int, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    r""":math:`\cos, \sin(2\pi jk/\mathrm{period})` for ``j < rows``, ``k < cols``."""
    work = torch.float64 if dtype == torch.float64 else torch.float32
    j = torch.arange(rows, device=device, dtype=torch.int64)[:, None]  # (rows, 1)
    k = torch.arange(cols, device=device, dtype=torch.int64)[None, :]  # (1, cols)
    phase = ((j * k) % period).to(work) * (2 * math.pi / period)  # (rows, cols), exact reduction
    return phase.cos(), phase.sin()


def dft_gemm_matrices(
    n: int, d: int, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor]:
    r"""The module doc's matrices in ``dtype``.

    Returns:
        ``hidden (D, 2H)`` :math:`= [C_{D,h} \mid S_{D,h}]` (the first ``H`` columns of each)
        and ``seq (2, R, N)``: the first :math:`R = \lfloor N/2 \rfloor + 1` rows of
        :math:`C_N` and of :math:`S_N`.
    """
    h = d // 2 + 1
    rows = n // 2 + 1
    c_d, s_d = _cos_sin(d, h, d, dtype, device)  # (D, H) each
    c_n, s_n = _cos_sin(rows, n, n, dtype, device)  # (R, N) each
    hidden = torch.cat([c_d, s_d], dim=1).to(dtype)  # (D, 2H)
    seq = torch.stack([c_n, s_n]).to(dtype)  # (2, R, N)
    return hidden, seq


_matrices = eager_cached(maxsize=8)(dft_gemm_matrices)  # cached eagerly, built in graphs


def _real_dft2_gemm(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``Re FFT2(x)`` of ``x (B, N, D)`` by the GEMMs of the module doc, in ``dtype``.

    The batch items share the folded matrices, so the sequence product is one GEMM per half
    with every item's columns side by side, ``(R, N) @ (N, B H)``.
    """
    b, n, d = x.shape
    h = d // 2 + 1
    hidden, seq = _matrices(n, d, dtype, x.device)  # (D, 2H), (2, R, N)
    p = torch.matmul(x.to(dtype), hidden)  # (B, N, 2H): P_c | P_s
    halves = p.view(b, n, 2, h).permute(2, 1, 0, 3).reshape(2, n, b * h)  # (2, N, B H)
    folded = torch.bmm(seq, halves).view(2, -1, b, h)  # (2, R, B, H): A, Z
    a, z = folded[0], folded[1]  # (R, B, H) each
    top = a - z  # (R, B, H): rows k < R
    bottom = (a + z)[1 : (n + 1) // 2].flip(0)  # ((N-1)//2, B, H): rows N-k, k descending
    half = torch.cat([top, bottom]).transpose(0, 1)  # (B, N, H): columns k < H
    return real_from_half_spectrum(half, d)  # (B, N, D)


class _FNetGemm(torch.autograd.Function):
    """The self-adjoint map: backward = the same GEMMs on the output gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, dtype: torch.dtype) -> Tensor:  # noqa: D102
        ctx.dtype, ctx.in_dtype = dtype, x.dtype
        return _real_dft2_gemm(x, dtype).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        return _real_dft2_gemm(grad, ctx.dtype).to(ctx.in_dtype), None


def fnet_gemm(x: Tensor) -> Tensor:
    r""":math:`\mathrm{Re}(F_N\, x\, F_D)` of a real ``x (B, N, D)`` as two GEMMs (module doc).

    Args:
        x: ``(B, N, D)`` real tensor.

    Returns:
        ``(B, N, D)`` in ``x``'s dtype; the products run in :func:`matmul_dtype` of ``x``.
    """
    if x.dim() != 3:
        raise ValueError(f"fnet_gemm takes (B, N, D), got shape {tuple(x.shape)}")
    return _FNetGemm.apply(x, matmul_dtype(x))
