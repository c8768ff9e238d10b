r"""The gated output projection of the LST layers, with a backward that rebuilds its input.

.. math::

    y = \mathrm{merge}(\sigma(q) \odot m) \odot \frac{\kappa}{1 - p}, \qquad
    \mathrm{out} = y W^T + b,

with ``q`` the queries and ``m`` the mixed values, both ``(B, H, N, d)``, ``merge`` the
concatenation of the heads to ``(B, N, H d)``, and :math:`\kappa` the dropout's keep mask
(all ones without dropout). Through autograd, the product and the projection keep
:math:`\sigma(q)`, ``m`` and ``y`` (and the dropout its mask) for the backward; ``q`` and ``m``
are kept anyway (by the projections and the mixing), so ``y`` is one ``(B, N, H d)`` tensor more
than the layer needs: :class:`GatedOutProjection` keeps ``q``, ``m``, ``W`` and the boolean mask
and rebuilds ``y`` in the backward (one pointwise pass):

.. math::

    \partial W = \partial\mathrm{out}^T y, \quad \partial b = \textstyle\sum \partial\mathrm{out},
    \quad g = \mathrm{split}(\partial\mathrm{out}\, W) \odot \frac{\kappa}{1 - p}, \quad
    \partial m = g \odot \sigma(q), \quad \partial q = g \odot m \odot \sigma(q)(1 - \sigma(q)).

Under ``torch.autocast`` the projection runs in the autocast dtype as :func:`F.linear` would
(the weight cast to it, the weight's gradient cast back).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from spectrans.layers.attention.projections import merge_heads, split_heads
from spectrans.layers.dropout import keep_mask


class GatedOutProjection(torch.autograd.Function):
    """``out = (merge(sigmoid(q) * mixed) * keep * scale) W^T + b`` (module docstring)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        q: Tensor,
        mixed: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        keep: Tensor | None,
        scale: float,
    ) -> Tensor:
        """``(B, N, D)`` from ``q`` and ``mixed`` ``(B, H, N, d)``, ``keep`` ``(B, N, H d)``."""
        y = _gated_input(q, mixed, keep, scale)  # (B, N, H*d)
        dtype = torch.get_autocast_dtype(y.device.type) if _autocast(y) else y.dtype
        ctx.save_for_backward(q, mixed, weight, keep)
        ctx.scale, ctx.has_bias, ctx.dtype = scale, bias is not None, dtype
        b = bias.to(dtype) if bias is not None else None
        return F.linear(y.to(dtype), weight.to(dtype), b)  # (B, N, D)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        """Gradients of q, mixed, W and b; ``y`` rebuilt from q and mixed."""
        q, mixed, weight, keep = ctx.saved_tensors
        dtype = ctx.dtype
        grad = grad.to(dtype)  # (B, N, D)
        rows = grad.reshape(-1, grad.shape[-1])  # (B N, D)
        grad_w = grad_b = grad_q = grad_mixed = None
        if ctx.needs_input_grad[2]:
            y = _rebuilt_input(q, mixed, keep, ctx.scale).to(dtype)  # (B, N, H*d)
            grad_w = (rows.T @ y.reshape(-1, y.shape[-1])).to(weight.dtype)  # (D, H*d)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            wide = torch.promote_types(rows.dtype, torch.float32)
            grad_b = rows.to(wide).sum(0).to(weight.dtype)  # (D,)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_y = grad @ weight.to(dtype)  # (B, N, H*d)
            if keep is not None:
                grad_y = grad_y * keep * ctx.scale
            g = split_heads(grad_y, q.shape[1]).to(mixed.dtype)  # (B, H, N, d)
            gate = torch.sigmoid(q)  # (B, H, N, d)
            if ctx.needs_input_grad[1]:
                grad_mixed = (g * gate).to(mixed.dtype)
            if ctx.needs_input_grad[0]:  # sigma'(q) = sigma(1 - sigma), one fused kernel
                grad_q = torch.ops.aten.sigmoid_backward(g * mixed, gate).to(q.dtype)
        return grad_q, grad_mixed, grad_w, grad_b, None, None


def _autocast(x: Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type)


def _gated_input(q: Tensor, mixed: Tensor, keep: Tensor | None, scale: float) -> Tensor:
    """``merge(sigmoid(q) * mixed) * keep * scale``: ``(B, N, H d)`` in ``mixed``'s dtype."""
    y = merge_heads(torch.sigmoid(q) * mixed)  # (B, N, H*d)
    return y if keep is None else y * keep * scale


def _rebuilt_input(q: Tensor, mixed: Tensor, keep: Tensor | None, scale: float) -> Tensor:
    """:func:`_gated_input` for the backward, its products in the other order.

    The same value through other graph nodes: traced by ``torch.compile``, the forward's ``y``
    and this one are not merged by common-subexpression elimination, so the partitioner
    rebuilds ``y`` from what it keeps instead of keeping the forward's.
    """
    y = merge_heads(mixed * torch.sigmoid(q))  # (B, N, H*d)
    return y if keep is None else scale * (keep * y)


def gated_out_projection(
    q: Tensor, mixed: Tensor, out_proj: torch.nn.Linear, dropout: torch.nn.Dropout
) -> Tensor:
    """``out_proj(dropout(merge(sigmoid(q) * mixed)))`` keeping q and mixed, not its input.

    Args:
        q: ``(B, H, N, d)`` queries.
        mixed: ``(B, H, N, d)`` mixed values.
        out_proj: The ``H d -> D`` projection.
        dropout: The dropout before it (its ``p`` and ``training``).

    Returns:
        ``(B, N, D)``.
    """
    batch, heads, seq_len, dim = q.shape
    keep = keep_mask(dropout, (batch, seq_len, heads * dim), q.device)  # (B, N, H*d) or None
    if keep is None:
        scale = 1.0
    elif dropout.p < 1.0:
        scale = 1.0 / (1.0 - dropout.p)
    else:  # p = 1: every value dropped, as nn.Dropout does
        scale = 0.0
    return GatedOutProjection.apply(q, mixed, out_proj.weight, out_proj.bias, keep, scale)
