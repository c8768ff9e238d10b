"""Fast Walsh-Hadamard transform vs scipy.linalg.hadamard / sqrt(n)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from spectrans.transforms.hadamard import fwht, next_power_of_two, sequency


@pytest.mark.parametrize("n", [1, 2, 7, 100, 128, 1000, 1024])
def test_matches_dense_sylvester(n: int) -> None:
    p = next_power_of_two(n)
    x = torch.randn(3, n, 2, dtype=torch.float64)
    xp = torch.zeros(3, p, 2, dtype=torch.float64)
    xp[:, :n] = x
    dense = sla.hadamard(p) / np.sqrt(p)
    ref = np.einsum("ij,bjc->bic", dense, xp.numpy())
    got = fwht(x, dim=1)
    assert got.shape == (3, p, 2)  # output has the padded length
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-10)


def test_self_inverse_and_unnormalised() -> None:
    x = torch.randn(5, 64, dtype=torch.float64)
    torch.testing.assert_close(fwht(fwht(x)), x, atol=1e-12, rtol=0)
    raw = fwht(x, normalized=False)
    np.testing.assert_allclose(raw.numpy(), x.numpy() @ sla.hadamard(64).T, atol=1e-10)
    torch.testing.assert_close(fwht(raw, normalized=False) / 64, x, atol=1e-12, rtol=0)


def test_gradcheck_and_bf16() -> None:
    x = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fwht, (x,))
    y = torch.randn(3, 32)
    got = fwht(y.bfloat16())
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), fwht(y), atol=5e-2, rtol=2e-2)


@pytest.mark.parametrize("p", [1, 2, 4, 16, 256])
def test_sequency_counts_sign_changes(p: int) -> None:
    sign_changes = (np.diff(sla.hadamard(p), axis=1) != 0).sum(axis=1)
    np.testing.assert_array_equal(sequency(p).numpy(), sign_changes)
