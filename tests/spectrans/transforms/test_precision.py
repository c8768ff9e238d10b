"""compute_dtype: float64 stays float64, every other float dtype computes in float32;
matmul_dtype: the autocast dtype under autocast, the input's dtype outside it."""

import pytest
import torch

from spectrans.transforms.precision import compute_dtype, matmul_dtype


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (torch.float64, torch.float64),
        (torch.float32, torch.float32),
        (torch.float16, torch.float32),
        (torch.bfloat16, torch.float32),
    ],
)
def test_compute_dtype(dtype: torch.dtype, expected: torch.dtype) -> None:
    assert compute_dtype(torch.zeros(2, dtype=dtype)) == expected


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_matmul_dtype_outside_autocast_is_the_input_dtype(dtype: torch.dtype) -> None:
    assert matmul_dtype(torch.zeros(2, dtype=dtype)) == dtype


def test_matmul_dtype_under_autocast_is_the_autocast_dtype() -> None:
    x = torch.zeros(2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert matmul_dtype(x) == torch.bfloat16
        assert (x @ torch.zeros(3, 2)).dtype == matmul_dtype(x)
