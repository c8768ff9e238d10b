"""The folded (half-size GEMM) DCT/DST filter against the dense float64 operator."""

from __future__ import annotations

import pytest
import torch

from spectrans.layers.folded_filter import folded_filter, folded_matrices
from spectrans.layers.spectral_filter import matrix_filter, transform_matrix
from tests.filter_oracle import assert_matches_dense_operator, bfloat16_relative_error


@pytest.mark.parametrize("kind", ["dct", "dst"])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 64, 100, 101, 2001])
def test_folded_filter_matches_the_dense_operator_with_gradients(kind: str, n: int) -> None:
    d = 4 if n < 1000 else 2
    assert_matches_dense_operator(folded_filter, kind, n, d, atol=1e-11, grad_atol=1e-10)


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
    folded = bfloat16_relative_error(folded_filter, kind)
    assert folded < 1e-2 and folded < 1.5 * bfloat16_relative_error(matrix_filter, kind)


def test_hadamard_is_refused() -> None:
    with pytest.raises(ValueError, match="mirror-symmetric"):
        folded_matrices("hadamard", 8, torch.float32, torch.device("cpu"))
