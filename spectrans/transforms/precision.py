"""The precision the transforms and mixing layers compute in."""

from __future__ import annotations

import torch
from torch import Tensor


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; float32, float16 and bfloat16 are computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def matmul_dtype(x: Tensor) -> torch.dtype:
    """The dtype a matrix product with ``x`` runs in: the autocast dtype under autocast.

    Autocast casts both operands of a matrix product to its dtype, so a constant operand built
    in this dtype is used as it is instead of being cast again on every call.
    """
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype
