"""Factored Hadamard and four-step DCT-II / DST-II against dense scipy matrices (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft
import scipy.linalg as sla
import torch

from spectrans.transforms.factored import (
    dct2_fourstep,
    dct2_fourstep_adjoint,
    fourstep_order,
    fourstep_split,
    hadamard_factored,
    hadamard_split,
)

COMPOSITE = [4, 6, 9, 12, 15, 21, 100, 128, 2000]


@pytest.mark.parametrize("p", [1, 2, 4, 8, 32, 128, 1024])
def test_hadamard_matches_sylvester(p: int) -> None:
    a, b = hadamard_split(p)
    assert a * b == p and a <= b <= 2 * a
    x = torch.randn(3, p, 5, dtype=torch.float64)
    ref = np.einsum("ij,bjc->bic", sla.hadamard(p), x.numpy())
    np.testing.assert_allclose(hadamard_factored(x).numpy(), ref, atol=1e-10)


@pytest.mark.parametrize("n", [1, 2, 7, *COMPOSITE, 97])
def test_split_is_a_factorisation_near_the_square_root(n: int) -> None:
    n1, n2 = fourstep_split(n)
    assert n1 * n2 == n
    divisors = [d for d in range(2, n) if n % d == 0]
    if not divisors:
        assert n1 == 1
    else:
        assert min(n1, n2) == max(d for d in divisors if d * d <= n)
        assert n1 % 2 == 0 or n % 2  # N1 even when N is
    assert sorted(fourstep_order(n).tolist()) == list(range(n))


@pytest.mark.parametrize("n", COMPOSITE)
@pytest.mark.parametrize("sine", [False, True])
def test_fourstep_matches_scipy_dct2_and_dst2(n: int, sine: bool) -> None:
    x = torch.randn(2, n, 3, dtype=torch.float64)
    order = fourstep_order(n).numpy()
    got = dct2_fourstep(x, sine).reshape(2, n, 3).numpy()
    if sine:  # DST2(x)_{N-1-k} = 2 c_k
        ref = sfft.dst(x.numpy(), type=2, axis=1)[:, n - 1 - order] / 2
    else:
        ref = sfft.dct(x.numpy(), type=2, axis=1)[:, order] / 2
    np.testing.assert_allclose(got, ref, atol=1e-10 * n)


@pytest.mark.parametrize("n", [6, 12, 100])
@pytest.mark.parametrize("sine", [False, True])
def test_adjoint_is_the_transpose(n: int, sine: bool) -> None:
    n1, n2 = fourstep_split(n)
    x = torch.randn(2, n, 3, dtype=torch.float64)
    c = torch.randn(2, n1, n2, 3, dtype=torch.float64)
    lhs = (dct2_fourstep(x, sine) * c).sum()
    rhs = (x * dct2_fourstep_adjoint(c, sine)).sum()
    torch.testing.assert_close(lhs, rhs, atol=1e-10, rtol=1e-12)
    # T = diag(2 w) R is orthonormal (w the ortho weights), so R^T diag(4 w^2) R = I
    w2 = torch.full((n,), 2.0 / n, dtype=torch.float64)
    w2[0] = 1.0 / n
    w2 = w2[fourstep_order(n)].view(1, n1, n2, 1)
    back = dct2_fourstep_adjoint(dct2_fourstep(x, sine) * w2, sine)
    torch.testing.assert_close(back, x, atol=1e-12, rtol=0)


def test_prime_length_is_refused() -> None:
    with pytest.raises(ValueError, match="no four-step split"):
        dct2_fourstep(torch.randn(1, 7, 2))


def test_bf16_follows_float64() -> None:
    x = torch.randn(2, 2000, 8, dtype=torch.float64)
    ref = dct2_fourstep(x)
    low = dct2_fourstep(x.bfloat16())
    assert low.dtype == torch.bfloat16
    assert ((low.double() - ref).norm() / ref.norm()).item() < 2e-2
    h = hadamard_factored(x[:, :1024])
    assert ((hadamard_factored(x[:, :1024].bfloat16()).double() - h).norm() / h.norm()) < 1e-2
