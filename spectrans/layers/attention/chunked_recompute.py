r"""A token mixer's core computed in chunks of batch rows, rebuilt in the backward.

For a function :math:`y = f(x_1, \dots, x_n; \theta)` whose rows along the batch dimension are
independent (row :math:`b` of :math:`y` depends on row :math:`b` of every :math:`x_i` and on
the shared parameters :math:`\theta` only), :func:`recompute_in_chunks` keeps the inputs for
the backward and none of :math:`f`'s intermediates. The backward runs :math:`f` again on one
chunk of rows at a time under autograd and takes the chunk's vector-Jacobian product:

.. math::

    \frac{\partial L}{\partial x_i}[c] = \mathrm{vjp}_{x_i}\big(f(x[c]),\, g[c]\big), \qquad
    \frac{\partial L}{\partial \theta} = \sum_c \mathrm{vjp}_{\theta}\big(f(x[c]),\, g[c]\big),

with :math:`g = \partial L / \partial y` and :math:`c` the chunks, so the intermediates of one
chunk exist at a time. It is :func:`torch.utils.checkpoint.checkpoint` split over the batch:
one forward of :math:`f` more per step. :math:`f` must be deterministic (no dropout inside);
the recomputation runs under the forward's autocast state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

CHUNK_NUMEL = 2**24
"""Elements of the first input per chunk of batch rows (at least one row)."""


def batch_chunks(x: Tensor, min_chunks: int = 1) -> list[slice]:
    """Slices of the batch dimension of ``x``, :data:`CHUNK_NUMEL` elements each.

    At least one row per slice, so a row larger than the bound is a slice of its own, and at
    least ``min_chunks`` slices when there are that many rows.
    """
    batch = x.shape[0]
    per_row = max(1, x[:1].numel())
    rows = max(1, min(CHUNK_NUMEL // per_row, -(-batch // max(1, min_chunks))))
    return [slice(start, min(start + rows, batch)) for start in range(0, batch, rows)]


def rows_of(tensor: Tensor | None, rows: slice) -> Tensor | None:
    """Rows ``rows`` of ``tensor`` along the batch (None stays None)."""
    return None if tensor is None else tensor[rows]


AutocastState = tuple[str, torch.dtype, bool]
"""Device type, dtype and whether autocast is on: what a recomputation runs under."""


def autocast_state(tensor: Tensor) -> AutocastState:
    """The autocast state of ``tensor``'s device type now (read in a forward)."""
    device = tensor.device.type
    return device, torch.get_autocast_dtype(device), torch.is_autocast_enabled(device)


def replay_autocast(state: AutocastState) -> torch.autocast:
    """The context that restores ``state`` (entered in a backward)."""
    device, dtype, enabled = state
    return torch.autocast(device, dtype, enabled=enabled)


RECOMPUTE_DEFAULT = False
"""What ``recompute_mixing = None`` (a layer's default) means: keep autograd's intermediates.

Measured on an H200 (``results/recompute_gpu.md``: one layer of width 256, batch 8, bf16,
forward and backward as CUDA-graph replays, N = 1K / 16K / 64K), rebuilding brings the LST
layers' and the Performer's peak memory to the softmax layer's (lst-dct at 64K 6.18 -> 5.37 GB,
Performer 8.36 -> 5.37 GB, softmax 5.38 GB) but costs time: lst-dct 1.39 / 1.37x at 16K /
64K, lst-hadamard 1.13 / 1.24 / 1.38x, Performer 4.7 / 2.4 / 2.3x. It is a memory plan to opt into
(``recompute_mixing = True``, ``model.recompute_mixing=true``), not a default."""


def wants_recompute(setting: bool | None, tracked: bool) -> bool:
    """Whether a layer rebuilds its mixing: ``setting`` True, False or None (the default).

    None means :data:`RECOMPUTE_DEFAULT`. Never inside compiled code (the compiler's
    partitioner chooses what to keep), and only when autograd records the forward
    (``tracked``: an input that requires grad).
    """
    wanted = RECOMPUTE_DEFAULT if setting is None else setting
    if not wanted or torch.compiler.is_compiling():
        return False
    return torch.is_grad_enabled() and tracked


def set_recompute_mixing(module: nn.Module, setting: bool | None) -> int:
    """Set ``recompute_mixing`` on every submodule of ``module`` that has the attribute.

    The LST layers, the feature-map attention layers and S4D read it through
    :func:`wants_recompute`: True rebuilds the mixing in the backward, False keeps autograd's
    intermediates, None is the default (:data:`RECOMPUTE_DEFAULT`: keep). Other modules are
    left alone.

    Args:
        module: A model or a layer.
        setting: True, False or None.

    Returns:
        The number of submodules set.
    """
    count = 0
    for sub in module.modules():
        if hasattr(sub, "recompute_mixing"):
            sub.recompute_mixing = setting
            count += 1
    return count


class _ChunkedRecompute(torch.autograd.Function):
    """``fn(*inputs)`` chunk by chunk; the backward rebuilds each chunk (module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        fn: Callable[..., Tensor],
        chunks: list[slice],
        params: list[Tensor],
        *args: Tensor | None,
    ) -> Tensor:
        """``fn`` on every chunk, concatenated along the batch (autograd is off inside)."""
        num_inputs = len(args) - len(params)
        inputs = args[:num_inputs]
        ctx.autocast = autocast_state(next(t for t in inputs if t is not None))
        ctx.fn, ctx.chunks, ctx.params, ctx.num_inputs = fn, chunks, params, num_inputs
        ctx.save_for_backward(*inputs)
        if len(chunks) <= 1:  # one chunk, or an empty batch
            return fn(*inputs)
        return torch.cat([fn(*(rows_of(t, rows) for t in inputs)) for rows in chunks])

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        """Per chunk: rebuild ``fn`` under autograd, take its vector-Jacobian product."""
        inputs = ctx.saved_tensors
        needs = ctx.needs_input_grad[3:]
        wants = [t is not None and needs[i] for i, t in enumerate(inputs)]
        params = [p for j, p in enumerate(ctx.params) if needs[ctx.num_inputs + j]]
        grad_inputs = [torch.zeros_like(t) if want else None for t, want in zip(inputs, wants)]
        grad_params = [torch.zeros_like(p) for p in params]
        for rows in ctx.chunks:
            leaves = [
                None if t is None else t[rows].detach().requires_grad_(want)
                for t, want in zip(inputs, wants)
            ]
            with torch.enable_grad(), replay_autocast(ctx.autocast):
                out = ctx.fn(*leaves)
            wrt = [leaf for leaf, want in zip(leaves, wants) if want] + params
            if not wrt:
                continue
            grads = iter(torch.autograd.grad(out, wrt, grad[rows], allow_unused=True))
            for i, want in enumerate(wants):
                chunk_grad = next(grads) if want else None
                if chunk_grad is not None:
                    grad_inputs[i][rows] = chunk_grad  # type: ignore[index]
            for total, chunk_grad in zip(grad_params, grads):
                if chunk_grad is not None:
                    total += chunk_grad
        param_grads = iter(grad_params)
        grad_all_params = [
            next(param_grads) if needs[ctx.num_inputs + j] else None for j in range(len(ctx.params))
        ]
        return (None, None, None, *grad_inputs, *grad_all_params)


def recompute_in_chunks(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor | None],
    params: Sequence[Tensor],
    chunks: list[slice],
) -> Tensor:
    """``fn(*inputs)`` keeping only ``inputs`` for the backward (see the module docstring).

    Args:
        fn: Deterministic, row-independent along dim 0 of every input; returns one tensor
            whose dim 0 is the batch.
        inputs: Batch-major tensors (or None), passed to ``fn`` positionally.
        params: The trainable tensors ``fn`` reads besides ``inputs`` (their gradients are
            summed over the chunks).
        chunks: Slices of the batch (:func:`batch_chunks`).

    Returns:
        ``fn(*inputs)``.
    """
    out: Tensor = _ChunkedRecompute.apply(fn, chunks, list(params), *inputs, *params)
    return out
