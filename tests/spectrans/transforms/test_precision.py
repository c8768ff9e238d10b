"""compute_dtype: float64 stays float64, every other float dtype computes in float32."""

import pytest
import torch

from spectrans.transforms.precision import compute_dtype


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
