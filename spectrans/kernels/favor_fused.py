r"""Non-causal FAVOR+ contraction in Triton kernels that never write an ``(N, m)`` tensor.

The same function as :func:`spectrans.layers.attention.favor_contract.favor_contract` (whose
docstring has the maths and the backward), per batch and head with ``x' = x d^{-1/4}``:

.. math::

    \phi_q = \mathrm{softmax}(W q'_i), \quad \phi_k = \mathrm{softmax}(W k'_j), \quad
    s_j = e^{\mathrm{lse}_j - |k'_j|^2/2 - E \ln 2}, \quad
    KV = \phi_k^T (s \odot V), \quad \mathrm{out} = \phi_q\, KV,

with ``E`` the largest ``e_j = \lfloor (\mathrm{lse}_j - |k'_j|^2/2) / \ln 2 \rfloor`` over
unmasked keys. The torch version forms ``phi_q`` and ``phi_k`` as ``(N, m)`` tensors and reads
them again in the backward; here each kernel recomputes the features of its block of rows from
``q``/``k`` and ``W`` (``d`` multiply-adds per feature) and keeps them in registers:

- keys (one program per batch and head): ``KV`` (m, e+1) and ``E``, accumulated over blocks of
  keys with ``E`` maximised on the way (earlier blocks are rescaled by an exact power of two);
- queries (one program per block of queries): ``out = phi_q KV``;
- backward, queries (one program per batch and head): ``dKV = phi_q^T G`` and
  ``dq' = (phi_q \odot G KV^T) W``;
- backward, keys (one program per block of keys): with ``F = s \odot phi_k``,
  ``dk' = (F \odot V dKV^T) W - \mathrm{rowsum}(F \odot V dKV^T) k'`` and ``dV = F\, dKV``.

Head and value widths up to 16 (``d`` and ``e + 1``), e.g. LRA Pathfinder's ``d = e = 4``.
Triton is optional (CUDA builds of torch); ``TRITON_INTERPRET=1`` runs the kernels on CPU
tensors.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from spectrans.kernels.triton_support import HAS_TRITON, cdiv, dot_precision, heads_as_rows

PADDED_WIDTH = 16
"""Head and value widths the kernels compute with (zero-padded up to it)."""
BLOCK_ROWS = 32
"""Query or key rows per block (each keeps a ``(rows, m)`` feature tile in registers)."""
NUM_WARPS = 8
"""Warps per program: a ``(32, 256)`` float32 tile is 32 registers per thread at 8 warps."""


@functools.cache
def _kernels() -> Any:
    """The kernel module, imported on first use (the interpreter is chosen when it is)."""
    from spectrans.kernels import favor_triton

    return favor_triton


def _features_width(m: int) -> int:
    """Features padded to a power of two (``tl.arange`` widths)."""
    return 1 << max(4, (m - 1).bit_length())


@torch.library.custom_op("spectrans::favor_contract", mutates_args=())
def _contract(
    q: Tensor, k: Tensor, v: Tensor, w: Tensor, mask: Tensor, heads: int, m: int
) -> tuple[Tensor, Tensor, Tensor]:
    """``(out, KV, E)`` of padded ``(B*H, N, 16)`` inputs, ``w`` (M, 16), ``mask`` (B, N) u8."""
    kern = _kernels()
    bh, n, _ = q.shape
    big_m = w.shape[0]
    kv = torch.empty(bh, big_m, PADDED_WIDTH, device=q.device, dtype=torch.float32)
    e_max = torch.empty(bh, device=q.device, dtype=torch.float32)
    prec = dot_precision(q)
    kern._favor_keys[(bh,)](
        k, v, w, mask, kv, e_max, n, m, heads,
        D=PADDED_WIDTH, E1=PADDED_WIDTH, M=big_m, BN=BLOCK_ROWS,
        HAS_MASK=mask.numel() > 0, PREC=prec, num_warps=NUM_WARPS,
    )  # fmt: skip
    out = torch.empty_like(v)  # (B*H, N, 16)
    kern._favor_queries[(cdiv(n, BLOCK_ROWS), bh)](
        q, w, kv, out, n, m, D=PADDED_WIDTH, E1=PADDED_WIDTH, M=big_m, BM=BLOCK_ROWS, PREC=prec,
        num_warps=NUM_WARPS,
    )  # fmt: skip
    return out, kv, e_max


@_contract.register_fake
def _(
    q: Tensor, k: Tensor, v: Tensor, w: Tensor, mask: Tensor, heads: int, m: int
) -> tuple[Tensor, Tensor, Tensor]:
    bh = q.shape[0]
    kv = q.new_empty(bh, w.shape[0], PADDED_WIDTH, dtype=torch.float32)
    return torch.empty_like(v), kv, q.new_empty(bh, dtype=torch.float32)


@torch.library.custom_op("spectrans::favor_contract_backward", mutates_args=())
def _contract_backward(
    grad: Tensor, q: Tensor, k: Tensor, v: Tensor, w: Tensor, kv: Tensor, e_max: Tensor, m: int
) -> tuple[Tensor, Tensor, Tensor]:
    """``(dq, dk, dv)`` of the padded inputs (module docstring)."""
    kern = _kernels()
    bh, n, _ = q.shape
    big_m = w.shape[0]
    grad = grad.to(v.dtype).contiguous()
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    dkv = torch.empty_like(kv)  # (B*H, M, 16) float32
    prec = dot_precision(q)
    widths = {"D": PADDED_WIDTH, "E1": PADDED_WIDTH, "M": big_m, "PREC": prec}
    widths["num_warps"] = NUM_WARPS
    kern._favor_backward_q[(bh,)](q, w, kv, grad, dq, dkv, n, m, BM=BLOCK_ROWS, **widths)
    kern._favor_backward_k[(cdiv(n, BLOCK_ROWS), bh)](
        k, v, w, e_max, dkv, dk, dv, n, m, BN=BLOCK_ROWS, **widths
    )
    return dq, dk, dv


@_contract_backward.register_fake
def _(
    grad: Tensor, q: Tensor, k: Tensor, v: Tensor, w: Tensor, kv: Tensor, e_max: Tensor, m: int
) -> tuple[Tensor, Tensor, Tensor]:
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
    q, k, v, w, _mask, _heads, m = inputs
    ctx.save_for_backward(q, k, v, w, output[1], output[2])
    ctx.m = m


def _backward(ctx: Any, grad_out: Tensor, *_unused: Any) -> tuple[Tensor | None, ...]:
    q, k, v, w, kv, e_max = ctx.saved_tensors
    dq, dk, dv = _contract_backward(grad_out, q, k, v, w, kv, e_max, ctx.m)
    return dq, dk, dv, None, None, None, None


_contract.register_autograd(_backward, setup_context=_setup_context)


def supports(q: Tensor, v_aug: Tensor, key_mask: Tensor | None) -> bool:
    """Whether the kernels take these inputs.

    Head and value widths (with the 1) up to 16, and one key mask per batch item
    (``(B|1, N)`` or ``(B|1, 1, N)``) or none.
    """
    one_mask_per_item = key_mask is None or key_mask.dim() < 3 or key_mask.shape[1] == 1
    widths = q.shape[-1] <= PADDED_WIDTH and v_aug.shape[-1] <= PADDED_WIDTH
    return HAS_TRITON and widths and one_mask_per_item


def favor_contract_fused(
    q: Tensor, k: Tensor, v_aug: Tensor, projection: Tensor, key_mask: Tensor | None
) -> Tensor:
    """:func:`~spectrans.layers.attention.favor_contract.favor_contract` in Triton kernels.

    Args:
        q: ``(B, H, N, d)`` scaled queries ``q' = q d^{-1/4}``, ``d <= 16``.
        k: ``(B, H, N, d)`` scaled keys (finite).
        v_aug: ``(B, H, N, e + 1)`` values with a ones column, zero at masked keys,
            ``e + 1 <= 16``.
        projection: ``(m, d)`` frequencies (no gradient is formed for it).
        key_mask: ``(B, 1, N)`` or ``(B, N)`` bool, True on real keys, or None.

    Returns:
        ``(B, H, N, e + 1)``: row i is ``c_i [numerator_i, normaliser_i]``, ``c_i > 0``.
    """
    if not supports(q, v_aug, key_mask):
        raise ValueError(
            "favor_contract_fused takes head and value widths (with the 1) <= 16 and one key "
            "mask per batch item"
        )
    b, h, n, _ = q.shape
    e1 = v_aug.shape[-1]
    m = projection.shape[0]
    w = projection.detach().to(q.dtype)  # (m, d)
    w = torch.nn.functional.pad(w, (0, PADDED_WIDTH - w.shape[1], 0, _features_width(m) - m))
    if key_mask is None:
        mask = torch.empty(0, dtype=torch.uint8, device=q.device)
    else:
        rows = key_mask.reshape(-1, n)  # (B|1, N): one mask for every head of a batch item
        mask = rows.expand(b, n).to(torch.uint8).contiguous()  # (B, N)
    v = v_aug.to(q.dtype)
    out, _, _ = _contract(
        *(heads_as_rows(t, PADDED_WIDTH) for t in (q, k, v)), w.contiguous(), mask, h, m
    )
    return out.view(b, h, n, PADDED_WIDTH)[..., :e1]  # (B, H, N, e+1)
