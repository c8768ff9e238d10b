r"""Softmax attention with dropout for small head widths (``d <= 16``), as Triton kernels.

For one batch item and head, with ``S = q k^T / \sqrt{d}`` (``N x N``), ``P = softmax(S)``
row-wise and a dropout mask ``M`` (``M_ij = 1`` with probability ``1 - p``):

.. math::

    O = \frac{M \odot P}{1 - p} V .

The kernels never form ``S`` or ``P`` in memory (the flash-attention recurrence): the forward
keeps, per query row, the running maximum ``m_i`` and sum ``l_i = \sum_j e^{S_ij - m_i}`` and
stores ``\mathrm{lse}_i = m_i + \ln l_i``; the backward recomputes ``P_ij = e^{S_ij -
\mathrm{lse}_i}`` block by block and uses, with ``dZ = dO V^T``,

.. math::

    dV = \Big(\frac{M \odot P}{1-p}\Big)^T dO, \quad
    dP = \frac{M \odot dZ}{1 - p}, \quad
    dS = P \odot (dP - D), \quad D_i = \sum_c dO_{ic} O_{ic},

    dQ = dS\, K / \sqrt{d}, \qquad dK = dS^T Q / \sqrt{d}

(``D_i = \sum_j dP_ij P_ij`` because ``O = Z V`` with ``Z = M \odot P / (1-p)``). The mask is
drawn, in the forward and again in the backward, by Philox from one 64-bit seed per call and
the index of the element's query row and group of 8 key columns (one Philox call gives eight
16-bit uniforms; an element is kept when its uniform is at least ``p 2^16``, so the keep
probability is within ``2^{-16}`` of ``1 - p``), and both passes see the same mask.

Head widths are zero-padded to 16 (the smallest tensor-core reduction), with the scale of the
true width: exact, as in :func:`spectrans.layers.attention.softmax.fused_sdpa`. No key mask and
no causal mask: the fused SDPA kernels take those. Fused SDPA kernels are tuned for head widths
of 64 and more; at LRA Pathfinder's width (4, padded to 8) they spend most of their work on
padding.

Triton is an optional dependency (it comes with CUDA builds of PyTorch). ``TRITON_INTERPRET=1``
runs the kernels on CPU tensors (slowly), which is how the tests check them without a GPU.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from spectrans.kernels.triton_support import HAS_TRITON, cdiv, dot_precision, heads_as_rows

PADDED_HEAD_DIM = 16
"""Head width the kernels compute with (``d`` is zero-padded up to it)."""
BLOCK_M = 64
"""Query rows per program."""
BLOCK_N = 64
"""Key rows per inner step."""


@functools.cache
def _kernels() -> Any:
    """The kernel module, imported on first use (the interpreter is chosen when it is)."""
    from spectrans.kernels import small_head_attention_triton

    return small_head_attention_triton


@torch.library.custom_op("spectrans::small_head_attention", mutates_args=())
def _attention(
    q: Tensor, k: Tensor, v: Tensor, scale: float, dropout: float, seed: Tensor
) -> tuple[Tensor, Tensor]:
    """``(out, lse)`` of padded ``(B*H, N, 16)`` q, k, v: ``(B*H, N, 16)`` and ``(B*H, N)``."""
    kernels = _kernels()
    bh, n, width = q.shape
    out = torch.empty_like(q)  # (B*H, N, 16)
    lse = torch.empty(bh, n, device=q.device, dtype=torch.float32)  # (B*H, N)
    kernels._forward[(cdiv(n, BLOCK_M), bh)](
        q, k, v, out, lse, seed, scale, dropout, n,
        D=width, BM=BLOCK_M, BN=BLOCK_N, DROPOUT=dropout > 0, PREC=dot_precision(q),
    )  # fmt: skip
    return out, lse


@_attention.register_fake
def _(
    q: Tensor, k: Tensor, v: Tensor, scale: float, dropout: float, seed: Tensor
) -> tuple[Tensor, Tensor]:
    return torch.empty_like(q), q.new_empty(q.shape[:2], dtype=torch.float32)


@torch.library.custom_op("spectrans::small_head_attention_backward", mutates_args=())
def _attention_backward(
    grad: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    scale: float,
    dropout: float,
    seed: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(dq, dk, dv)``, each ``(B*H, N, 16)``, by the recomputing kernels."""
    kernels = _kernels()
    bh, n, width = q.shape
    do = grad.to(q.dtype).contiguous()  # (B*H, N, 16)
    delta = (do.float() * out.float()).sum(-1)  # (B*H, N)
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    common = {
        "D": width,
        "BM": BLOCK_M,
        "BN": BLOCK_N,
        "DROPOUT": dropout > 0,
        "PREC": dot_precision(q),
    }
    kernels._backward_kv[(cdiv(n, BLOCK_N), bh)](
        q, k, v, do, lse, delta, dk, dv, seed, scale, dropout, n, **common
    )
    kernels._backward_q[(cdiv(n, BLOCK_M), bh)](
        q, k, v, do, lse, delta, dq, seed, scale, dropout, n, **common
    )
    return dq, dk, dv


@_attention_backward.register_fake
def _(
    grad: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    scale: float,
    dropout: float,
    seed: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    q, k, v, scale, dropout, seed = inputs
    ctx.save_for_backward(q, k, v, output[0], output[1], seed)
    ctx.scale, ctx.dropout = scale, dropout


def _backward(ctx: Any, grad_out: Tensor, grad_lse: Tensor | None) -> tuple[Tensor | None, ...]:
    q, k, v, out, lse, seed = ctx.saved_tensors
    dq, dk, dv = _attention_backward(grad_out, q, k, v, out, lse, ctx.scale, ctx.dropout, seed)
    return dq, dk, dv, None, None, None


_attention.register_autograd(_backward, setup_context=_setup_context)


def small_head_attention(
    q: Tensor, k: Tensor, v: Tensor, dropout: float = 0.0, seed: Tensor | None = None
) -> Tensor:
    """Softmax attention of ``(B, H, N, d)`` q, k, v with ``d <= 16``, no mask.

    Args:
        q: Queries ``(B, H, N, d)``.
        k: Keys ``(B, H, N, d)``.
        v: Values ``(B, H, N, d)``.
        dropout: Probability of dropping an attention weight (0 in evaluation).
        seed: () int64 device tensor seeding the dropout mask; None draws one from torch's
            generator of the device.

    Returns:
        ``(B, H, N, d)`` in q's dtype.
    """
    if not HAS_TRITON:
        raise RuntimeError("small_head_attention needs Triton (it comes with CUDA builds of torch)")
    if q.shape[-1] > PADDED_HEAD_DIM:
        raise ValueError(f"head width {q.shape[-1]} > {PADDED_HEAD_DIM}; use fused SDPA")
    if seed is None:
        seed = torch.randint(0, 2**62, (), device=q.device, dtype=torch.int64)
    b, h, n, d = q.shape
    out, _ = _attention(
        *(heads_as_rows(t, PADDED_HEAD_DIM) for t in (q, k, v)), d**-0.5, float(dropout), seed
    )
    return out.view(b, h, n, PADDED_HEAD_DIM)[..., :d]  # (B, H, N, d)


def keep_mask(seed: Tensor, bh: int, n: int, dropout: float) -> Tensor:
    """The ``(N, N)`` bool keep mask the kernels draw for flattened batch-head ``bh``."""
    kernels = _kernels()
    out = torch.empty(n, n, dtype=torch.uint8, device=seed.device)
    grid = (cdiv(n, BLOCK_M), cdiv(n, BLOCK_N))
    kernels._keep_matrix[grid](seed, out, bh, n, dropout, BM=BLOCK_M, BN=BLOCK_N)
    return out.bool()
