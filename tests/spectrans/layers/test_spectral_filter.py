"""The GEMM form of the LST filters against the dense float64 operator A^T diag(gains) A."""

from __future__ import annotations

import pytest
import torch

from spectrans.layers import spectral_filter
from spectrans.layers.spectral_filter import analysis_matrix, matrix_filter, transform_matrix


@pytest.mark.parametrize("kind", ["dct", "dst", "hadamard"])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 100, 101])
def test_matrix_filter_matches_the_dense_operator(kind: str, n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))  # (F, N)
    u = torch.randn(2, 3, n, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    gains = torch.randn(3, a.shape[0], dtype=torch.float64, generator=gen, requires_grad=True)
    ref = torch.einsum("kj,hk,kl,bhld->bhjd", a, gains, a, u)  # (B, H, N, d)
    y = matrix_filter(u, gains, kind)
    torch.testing.assert_close(y, ref, atol=1e-12, rtol=0)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    got = torch.autograd.grad(y, (u, gains), g)
    want = torch.autograd.grad(ref, (u, gains), g)
    for x, w in zip(got, want, strict=True):
        torch.testing.assert_close(x, w, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", ["dct", "dst"])
def test_matrix_filter_in_bfloat16_stays_close(kind: str) -> None:
    gen = torch.Generator().manual_seed(0)
    n = 2001
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))
    u = torch.randn(2, 2, n, 8, dtype=torch.float64, generator=gen)
    gains = torch.rand(2, n, dtype=torch.float64, generator=gen)
    ref = torch.einsum("kj,hk,kl,bhld->bhjd", a, gains, a, u)
    low = matrix_filter(u.bfloat16(), gains.bfloat16(), kind).double()
    assert ((low - ref).norm() / ref.norm()).item() < 1e-2  # measured 0.44 %


@pytest.mark.parametrize("kind", ["dct", "dst", "hadamard"])
def test_phases_in_int64_give_the_same_matrix(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    phase_dtype = spectral_filter._phase_dtype
    assert phase_dtype(32768, 32768) == torch.int64  # 2 n^2 = 2^31
    assert phase_dtype(32767, 32767) == torch.int32
    small = transform_matrix(kind, 37, torch.float64, torch.device("cpu"))
    monkeypatch.setattr(spectral_filter, "_phase_dtype", lambda rows, n: torch.int64)
    wide = transform_matrix(kind, 37, torch.float64, torch.device("cpu"))
    torch.testing.assert_close(small, wide, atol=0, rtol=0)


def test_analysis_matrix_is_built_once_and_can_be_saved_for_backward() -> None:
    spectral_filter.analysis_matrix.cache_clear()
    cpu = torch.device("cpu")
    with torch.inference_mode():  # first use under inference mode, e.g. an evaluation
        first = analysis_matrix("dct", 12, torch.float32, cpu)
    assert not first.is_inference()
    assert analysis_matrix("dct", 12, torch.float32, cpu) is first
    torch.testing.assert_close(first, transform_matrix("dct", 12, torch.float32, cpu))
    u = torch.randn(1, 2, 12, 3, requires_grad=True)
    gains = torch.rand(2, 12, requires_grad=True)
    matrix_filter(u, gains, "dct").square().sum().backward()  # saves the cached matrix
    assert u.grad is not None and gains.grad is not None
