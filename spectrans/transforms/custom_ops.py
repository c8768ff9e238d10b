"""Autograd wiring shared by the FFT custom ops whose backward is a second custom op.

An op ``f(a, b)`` with real inputs whose gradients ``(da, db)`` come from a backward op
``f_backward(grad, a, b)``: both inputs are saved for the backward (nothing else), and the
backward op's fake returns contiguous tensors shaped like the inputs, so ``torch.compile``
traces the pair without running it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def register_backward_op(op: Any, backward_op: Any) -> None:
    """Make ``backward_op(grad, a, b) -> (da, db)`` the autograd formula of ``op(a, b)``.

    Args:
        op: A ``torch.library.custom_op`` of two tensor inputs.
        backward_op: A ``torch.library.custom_op`` taking the output gradient and both inputs.
    """

    @backward_op.register_fake
    def _(grad: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        return (
            torch.empty_like(a, memory_format=torch.contiguous_format),
            torch.empty_like(b, memory_format=torch.contiguous_format),
        )

    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        ctx.save_for_backward(*inputs)

    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor]:
        return backward_op(grad, *ctx.saved_tensors)

    op.register_autograd(backward, setup_context=setup_context)
