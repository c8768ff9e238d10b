"""DCT/DST through FFTs vs scipy.fft and vs dense matrices (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft
import torch

from spectrans.transforms import cosine

LENGTHS = [1, 2, 7, 100, 128, 1000, 1024]
CASES = [("dct", 2), ("dct", 3), ("dst", 1), ("dst", 2), ("dst", 3)]
NORMS = [None, "backward", "ortho", "forward"]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("kind,type_", CASES)
def test_matches_scipy_forward_and_inverse(n: int, kind: str, type_: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((3, n))
    for norm in NORMS:
        for name in (kind, "i" + kind):
            ref = getattr(sfft, name)(x, type=type_, norm=norm, axis=-1)
            got = getattr(cosine, name)(torch.from_numpy(x), type=type_, norm=norm, dim=-1)
            assert got.dtype == torch.float64
            np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind,type_", CASES)
def test_matches_dense_matrix_along_middle_dim(kind: str, type_: int) -> None:
    n = 7
    dense = getattr(sfft, kind)(np.eye(n), type=type_, norm="ortho", axis=0)  # column j = T e_j
    x = torch.randn(2, n, 3, dtype=torch.float64)
    ref = np.einsum("kj,bjc->bkc", dense, x.numpy())
    got = getattr(cosine, kind)(x, type=type_, norm="ortho", dim=1)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)
    # orthonormal: T T^T = I, and the inverse undoes the transform
    np.testing.assert_allclose(dense @ dense.T, np.eye(n), atol=1e-12)
    back = getattr(cosine, "i" + kind)(got, type=type_, norm="ortho", dim=1)
    torch.testing.assert_close(back, x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind,type_", CASES)
def test_gradcheck(kind: str, type_: int) -> None:
    x = torch.randn(2, 6, dtype=torch.float64, requires_grad=True)
    for name in (kind, "i" + kind):
        fn = getattr(cosine, name)
        assert torch.autograd.gradcheck(lambda t, fn=fn: fn(t, type=type_, norm="ortho"), (x,))
        assert torch.autograd.gradcheck(lambda t, fn=fn: fn(t, type=type_, norm=None), (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_inputs(dtype: torch.dtype) -> None:
    x = torch.randn(4, 64, dtype=torch.float64)
    ref = sfft.dct(x.numpy(), type=2, norm="ortho")
    got = cosine.dct(x.to(dtype))
    assert got.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 5e-2
    np.testing.assert_allclose(got.double().numpy(), ref, atol=tol * np.abs(ref).max())


def test_bad_type_and_norm_raise() -> None:
    with pytest.raises(ValueError, match="type=4"):
        cosine.dct(torch.randn(4), type=4)
    with pytest.raises(ValueError, match="norm='bogus'"):
        cosine.dst(torch.randn(4), norm="bogus")
