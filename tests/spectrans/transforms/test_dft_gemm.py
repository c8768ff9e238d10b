"""FNet's mixing as dense GEMMs vs the float64 DFT: values, adjoint, precision, bad shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.transforms.dft_gemm import dft_gemm_matrices, fnet_gemm
from spectrans.transforms.fft import fourier_mix_2d


@pytest.mark.parametrize(
    ("n", "d"), [(1, 1), (2, 3), (3, 2), (7, 8), (8, 7), (64, 5), (100, 16), (101, 6), (2001, 4)]
)
def test_matches_the_real_part_of_numpy_fft2(n: int, d: int) -> None:
    x = torch.randn(3, n, d, dtype=torch.float64)
    ref = np.fft.fft2(x.numpy(), axes=(-2, -1)).real
    np.testing.assert_allclose(fnet_gemm(x).numpy(), ref, atol=1e-10 * max(n, d, 10))


def test_matrices_are_the_dft_halves() -> None:
    n, d = 9, 6
    hidden, seq = dft_gemm_matrices(n, d, torch.float64, torch.device("cpu"))
    f_n = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)
    f_d = np.exp(-2j * np.pi * np.outer(np.arange(d), np.arange(d)) / d)
    h = d // 2 + 1
    # F_D = C - iS: the first H columns of C, then of S = -Im F_D
    expected_hidden = np.hstack([f_d.real[:, :h], -f_d.imag[:, :h]])  # (D, 2H)
    np.testing.assert_allclose(hidden.numpy(), expected_hidden, atol=1e-14)
    rows = n // 2 + 1  # C_N and S_N = -Im F_N, first rows (the rest mirror them)
    np.testing.assert_allclose(seq.numpy(), np.stack([f_n.real, -f_n.imag])[:, :rows], atol=1e-14)


@pytest.mark.parametrize("n", [1, 2, 15, 16])
def test_backward_is_the_adjoint(n: int) -> None:
    """<A x, w> = <x, A w>: the gradient of <A x, w> is A w (the map is self-adjoint)."""
    x = torch.randn(2, n, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, n, 7, dtype=torch.float64)
    (g,) = torch.autograd.grad((fnet_gemm(x) * w).sum(), x)
    torch.testing.assert_close(g, fourier_mix_2d(w), atol=1e-10, rtol=0)
    assert torch.autograd.gradcheck(fnet_gemm, (x[:1, :5].detach().requires_grad_(True),))


def test_refuses_a_tensor_that_is_not_batch_sequence_width() -> None:
    with pytest.raises(ValueError, match=r"\(B, N, D\)"):
        fnet_gemm(torch.randn(4, 5))


def test_gemm_path_bf16_autocast_and_float32() -> None:
    x = torch.randn(2, 2001, 64)
    reference = fourier_mix_2d(x.double())
    exact = fnet_gemm(x)
    assert exact.dtype == torch.float32
    assert (exact.double() - reference).norm() / reference.norm() < 1e-5
    xg = x.clone().requires_grad_(True)
    with torch.autocast("cpu", torch.bfloat16):
        low = fnet_gemm(xg)
    assert low.dtype == torch.float32  # products in bfloat16, result in the input's dtype
    error = (low.double() - reference).norm() / reference.norm()
    assert 1e-4 < error < 2e-2  # bfloat16 rounding, not float32
    (g,) = torch.autograd.grad(low.sum(), xg)
    ref_g = fourier_mix_2d(torch.ones(2, 2001, 64, dtype=torch.float64))
    assert g.dtype == torch.float32
    assert (g.double() - ref_g).norm() / ref_g.norm() < 2e-2
