"""Host-side helpers shared by the Triton kernel modules (no Triton import here).

Triton is optional: it comes with CUDA builds of torch, and ``TRITON_INTERPRET=1`` runs the
kernels on CPU tensors. The kernel modules define their kernels on first use, so that choice
is read then.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import Tensor

HAS_TRITON = importlib.util.find_spec("triton") is not None


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive ints (program-grid sizes)."""
    return -(-a // b)


def dot_precision(t: Tensor) -> str:
    """``tl.dot``'s ``input_precision``: ``ieee`` for float32 inputs (not TF32).

    Half-precision products are exact in the tensor cores anyway, so ``tf32`` there only
    names the default.
    """
    return "ieee" if t.dtype == torch.float32 else "tf32"


def heads_as_rows(t: Tensor, width: int) -> Tensor:
    """``(B, H, N, c)`` -> contiguous ``(B*H, N, width)``, zero-padded to ``width`` columns."""
    b, h, n, c = t.shape
    return torch.nn.functional.pad(t, (0, width - c)).reshape(b * h, n, width).contiguous()
