import math

import pytest
import torch

from spectrans.kernels import chi_mean, gaussian_projection, orthogonal_block


@pytest.mark.parametrize("dim", [1, 3, 16, 64])
def test_orthogonal_block_is_orthonormal(dim: int) -> None:
    block = orthogonal_block(dim).double()
    torch.testing.assert_close(
        block @ block.T, torch.eye(dim, dtype=torch.float64), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(("rows", "dim"), [(256, 64), (100, 16), (5, 8), (64, 64)])
def test_rows_orthogonal_within_each_block(rows: int, dim: int) -> None:
    w = gaussian_projection(rows, dim, orthogonal=True).double()
    assert w.shape == (rows, dim)
    norms = w.norm(dim=1)
    for start in range(0, rows, dim):
        block = w[start : start + dim]
        gram = block @ block.T
        torch.testing.assert_close(
            gram, torch.diag(norms[start : start + dim] ** 2), atol=1e-4 * dim, rtol=0
        )


def test_chi_mean_matches_closed_form() -> None:
    # E[chi(1)] = sqrt(2/pi), E[chi(2)] = sqrt(pi/2).
    assert chi_mean(1) == pytest.approx(math.sqrt(2 / math.pi))
    assert chi_mean(2) == pytest.approx(math.sqrt(math.pi / 2))


@pytest.mark.parametrize("orthogonal", [True, False])
def test_row_norms_follow_chi_distribution(orthogonal: bool) -> None:
    dim = 16
    norms = gaussian_projection(4096, dim, orthogonal=orthogonal).norm(dim=1).double()
    # chi(d): mean chi_mean(d), variance d - mean^2; check the mean to 5 standard errors.
    mean, var = chi_mean(dim), dim - chi_mean(dim) ** 2
    assert abs(norms.mean().item() - mean) < 5 * math.sqrt(var / 4096)
    assert norms.var().item() == pytest.approx(var, rel=0.15)


def test_orthogonal_rows_are_not_all_unit_norm() -> None:
    # The chi rescaling is applied: rows are not the unit rows of Q.
    norms = gaussian_projection(64, 64, orthogonal=True).norm(dim=1)
    assert norms.std() > 0.3


def test_bad_sizes_raise() -> None:
    with pytest.raises(ValueError, match="num_rows"):
        gaussian_projection(0, 4)
