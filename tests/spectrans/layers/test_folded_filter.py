"""The folded (half-size GEMM) DCT/DST filter against the dense float64 operator."""

from __future__ import annotations

import pytest
import torch

from spectrans.layers.folded_filter import folded_filter, folded_matrices
from spectrans.layers.spectral_filter import matrix_filter, transform_matrix


@pytest.mark.parametrize("kind", ["dct", "dst"])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 64, 100, 101, 2001])
def test_folded_filter_matches_the_dense_operator_with_gradients(kind: str, n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))  # (N, N)
    d = 4 if n < 1000 else 2
    u = torch.randn(2, 3, n, d, dtype=torch.float64, generator=gen, requires_grad=True)
    gains = torch.randn(3, n, dtype=torch.float64, generator=gen, requires_grad=True)
    ref = torch.einsum("kj,hk,kl,bhld->bhjd", a, gains, a, u)  # (B, H, N, d)
    y = folded_filter(u, gains, kind)
    torch.testing.assert_close(y, ref, atol=1e-11, rtol=0)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    got = torch.autograd.grad(y, (u, gains), g)
    want = torch.autograd.grad(ref, (u, gains), g)
    for x, w in zip(got, want, strict=True):
        torch.testing.assert_close(x, w, atol=1e-10, rtol=0)


@pytest.mark.parametrize("kind", ["dct", "dst"])
@pytest.mark.parametrize("n", [9, 16])
def test_mirror_symmetry_the_fold_rests_on(kind: str, n: int) -> None:
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))  # (N, N)
    signs = torch.tensor([(-1.0) ** k for k in range(n)], dtype=torch.float64)[:, None]
    torch.testing.assert_close(a.flip(1), signs * a, atol=1e-14, rtol=0)
    a_e, a_o = folded_matrices(kind, n, torch.float64, torch.device("cpu"))
    assert a_e.shape == ((n + 1) // 2,) * 2 and a_o.shape == (n // 2,) * 2


@pytest.mark.parametrize("kind", ["dct", "dst"])
def test_folded_filter_in_bfloat16_is_as_close_as_the_full_gemms(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    n = 2001
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))
    u = torch.randn(2, 2, n, 8, dtype=torch.float64, generator=gen)
    gains = torch.rand(2, n, dtype=torch.float64, generator=gen)
    ref = torch.einsum("kj,hk,kl,bhld->bhjd", a, gains, a, u)
    error = {}
    for name, fn in (("folded", folded_filter), ("full", matrix_filter)):
        low = fn(u.bfloat16(), gains.bfloat16(), kind).double()
        error[name] = ((low - ref).norm() / ref.norm()).item()
    assert error["folded"] < 1e-2 and error["folded"] < 1.5 * error["full"]


def test_hadamard_is_refused() -> None:
    with pytest.raises(ValueError, match="mirror-symmetric"):
        folded_matrices("hadamard", 8, torch.float32, torch.device("cpu"))
