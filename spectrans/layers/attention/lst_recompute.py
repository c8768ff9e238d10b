r"""The gated spectral mixing of an LST layer with a backward that keeps only q, k and v.

The layer's core, per head, with :math:`m` the padding mask and :math:`M` the filter
(:meth:`mix_path` of the layer):

.. math::

    u = \sigma(k) \odot v \odot m, \qquad \bar u = M u, \qquad y = \sigma(q) \odot \bar u.

Autograd through these steps keeps :math:`\sigma(k)`, :math:`v`, the filter's own state (the
complex spectrum of :math:`u` on the FFT path, :math:`A u` on the GEMM path), :math:`\sigma(q)`
and :math:`\bar u`: about six ``(B, N, H d)`` tensors, against four for flash attention's q,
k, v and output. :class:`GatedMixRecompute` keeps q, k and v only (the mask too) and rebuilds
the rest in the backward, one filter application more than autograd (the filter's forward):

.. math::

    \frac{\partial L}{\partial q} = g \odot \bar u \odot \sigma'(q), \qquad
    \Big(\frac{\partial L}{\partial u}, \frac{\partial L}{\partial \Lambda}\Big) =
        \mathrm{vjp}_{M}(g \odot \sigma(q)),

    \frac{\partial L}{\partial v} = \frac{\partial L}{\partial u} \odot \sigma(k) \odot m,
    \qquad
    \frac{\partial L}{\partial k} = \frac{\partial L}{\partial u} \odot v \odot m \odot
        \sigma'(k),

with :math:`g = \partial L / \partial y`, :math:`\sigma' = \sigma (1 - \sigma)` and the
vector-Jacobian product of the filter taken by autograd on the rebuilt :math:`\bar u` (so
every filter kind and path, causal included, has the backward of its forward). The filter's
gains :math:`\Lambda` come from the layer's ``scale`` parameter, whose gradient is returned
for it. The recomputation runs under the autocast state of the forward, so it rebuilds the
same values.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from spectrans.layers.attention.chunked_recompute import (
    autocast_state,
    batch_chunks,
    replay_autocast,
    rows_of,
)


class GatedMixer(Protocol):
    """What :class:`GatedMixRecompute` needs of a layer."""

    scale: nn.Parameter | None

    def gated_mix(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, path: str) -> Tensor:
        """``sigmoid(q) * M(sigmoid(k) * v * mask)``, ``(B, H, N, d)``."""
        ...

    def mix_path(self, u: Tensor, path: str) -> Tensor:
        """``M u`` on ``path``, ``(B, H, N, d)``."""
        ...


def masked(u: Tensor, mask: Tensor | None) -> Tensor:
    """``u`` (B, H, N, d) with the padded positions of ``mask`` (B, N) set to zero."""
    return u if mask is None else u * mask[:, None, :, None].to(u.dtype)


class GatedMixRecompute(torch.autograd.Function):
    """``y = sigmoid(q) * M(sigmoid(k) * v * mask)``, saving q, k, v and the mask only."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        scale: Tensor | None,
        layer: GatedMixer,
        path: str,
    ) -> Tensor:
        """The layer's gated mixing (autograd is off inside), ``(B, H, N, d)``."""
        ctx.autocast = autocast_state(q)
        ctx.layer, ctx.path = layer, path
        ctx.save_for_backward(q, k, v, mask)
        chunks = chunks_of(q, path)
        if len(chunks) == 1:
            return layer.gated_mix(q, k, v, mask, path)
        out = torch.empty_like(q)  # (B, H, N, d)
        for rows in chunks:
            out[rows] = layer.gated_mix(q[rows], k[rows], v[rows], rows_of(mask, rows), path)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        """Rebuild u and the filter's output, then the gradients of q, k, v and scale."""
        q, k, v, mask = ctx.saved_tensors
        layer: GatedMixer = ctx.layer
        scale = layer.scale if ctx.needs_input_grad[4] else None
        chunks = chunks_of(q, ctx.path)
        if len(chunks) == 1:
            parts = _chunk_backward(ctx, grad, q, k, v, mask, scale)
            return (*parts[:3], None, parts[3] if scale is not None else None, None, None)
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        grad_scale = None if scale is None else torch.zeros_like(scale)
        for rows in chunks:
            parts = _chunk_backward(
                ctx, grad[rows], q[rows], k[rows], v[rows], rows_of(mask, rows), scale
            )
            grad_q[rows], grad_k[rows], grad_v[rows] = parts[:3]
            if grad_scale is not None:
                grad_scale += parts[3]
        return grad_q, grad_k, grad_v, None, grad_scale, None, None


def _chunk_backward(
    ctx: Any,
    grad: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    scale: Tensor | None,
) -> tuple[Tensor, ...]:
    """Gradients of q, k, v (and scale) for one chunk of batch rows: see the module docstring.

    Intermediates are dropped as soon as they are used, so the backward holds the chunk's
    rebuilt filter state once.
    """
    layer: GatedMixer = ctx.layer
    with replay_autocast(ctx.autocast):
        gate_k = torch.sigmoid(k)  # (b, H, N, d)
        u = masked(gate_k * v, mask).requires_grad_()  # (b, H, N, d), a leaf
        with torch.enable_grad():
            mixed = layer.mix_path(u, ctx.path)  # (b, H, N, d), in the filter's dtype
        gate_q = torch.sigmoid(q)  # (b, H, N, d)
        mixed_gated = mixed.detach().to(grad.dtype)
        grad_q = grad * mixed_gated * (gate_q * (1 - gate_q))  # (b, H, N, d)
        del mixed_gated
        grad_mixed = (grad * gate_q).to(mixed.dtype)  # (b, H, N, d)
        del gate_q
        wrt = [u] if scale is None else [u, scale]
        grads = torch.autograd.grad(mixed, wrt, grad_mixed)
        del mixed, grad_mixed
        grad_u = masked(grads[0], mask)  # (b, H, N, d)
        grad_v = grad_u * gate_k
        grad_k = grad_u * v * (gate_k * (1 - gate_k))
    return (grad_q, grad_k, grad_v, *grads[1:])


FAST_PATH_CHUNKS = 4
"""At least this many chunks (at most one per row) on the ``fast`` path, whose float32 and
complex temporaries are about six times the chunk's bfloat16 size. With the tracker of
``experiments.peak_memory`` (a scratch script varying the chunk size; one layer forward
and backward on the CPU, bf16 autocast, B = 8, N = 8192, width 256, 4 heads), the DCT layer's
peak was 1.50x the softmax layer's in one chunk, 1.22x in two and 1.00x in four."""


def chunks_of(q: Tensor, path: str) -> list[slice]:
    """:func:`batch_chunks` for the filter ``path`` (:data:`FAST_PATH_CHUNKS` on ``fast``)."""
    return batch_chunks(q, FAST_PATH_CHUNKS if path == "fast" else 1)


def recompute_gated_mix(
    layer: GatedMixer, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, path: str
) -> Tensor:
    """:meth:`gated_mix` of ``layer`` through :class:`GatedMixRecompute`, ``(B, H, N, d)``."""
    out: Tensor = GatedMixRecompute.apply(q, k, v, mask, layer.scale, layer, path)
    return out
