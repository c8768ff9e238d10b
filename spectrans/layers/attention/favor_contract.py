"""Non-causal FAVOR+ attention contraction with a backward that reads each feature tensor once.

Forward (per batch and head, ``x' = x d^{-1/4}`` for queries q and keys k, ``W`` (m, d)):

    phi_k = softmax(W k'_j)                     (N, m)
    s_j   = exp(lse_j - |k'_j|^2 / 2 - E ln 2)  (N, 1), lse_j = log sum_i exp((W k'_j)_i)
    KV    = phi_k^T (s * V)                     (m, e + 1), V = [v, 1] (zero at masked keys)
    phi_q = exp(W q'_i - c_i)                   (N, m), c_i = log sum_f exp((W q'_i)_f) R_f
    out   = phi_q KV                            (N, e + 1)

with ``R = KV[:, e]`` the key sums of the features: ``phi_q`` is a per-row factor of the
FAVOR+ query features, chosen so that every normaliser ``out[:, e]`` is 1 (it is formed as
``softmax(W q' + log R) (KV / R)``, :func:`query_weights`; features with ``R_f`` below
``REACH_FLOOR`` of the largest are dropped), so no normaliser underflows whatever the norms.

so ``phi_k(j) s_j = exp(W k'_j - |k'_j|^2 / 2) 2^{-E}``: the FAVOR+ key features up to the
per-head constant ``2^{-E}`` (:func:`~spectrans.kernels.rff.scale_keys_exactly`), and each row
of ``out`` is the FAVOR+ numerator and normaliser up to one positive factor per query row.
Both constants cancel in ``out[:, :e] / out[:, e]``, so they are constants for autograd: the
backward below is the exact gradient of that ratio (not of ``out`` itself).

Backward, with ``G = dL/d out`` (N, e + 1), ``KV = phi_k^T (s V)`` (m, e + 1) and ``o`` the
elementwise product:

    dL/dq'_i = sum_c G_ic (phi_q (KV[:, c] o W))_i              one read of phi_q
    dL/dKV   = phi_q^T G                                       one read of phi_q
    [dL/d(sV), R] = phi_k [dKV, (dKV[:, c] o W)_c]              one read of phi_k
    dL/dk'_j = sum_c (s V)_jc R_jc - k'_j s_j sum_c dL/d(sV)_jc V_jc

where ``dKV[:, c] o W`` is the (m, d) matrix ``dKV_ic W_ia``. Autograd through the plain
expressions would form ``dL/dphi`` and ``dL/dphi o phi`` as (N, m) tensors and read them again;
here the (N, m) tensors are only read, three times, and the written ``(N, (e + 1) d)``
tensors are smaller than ``(N, m)`` when ``(e + 1)(d + 1) <= m`` (:func:`fused_is_cheaper`),
e.g. Pathfinder's d = e = 8, m = 256.

The Triton kernels (:data:`TRITON_KERNELS`) keep the query frame ``softmax(W q')``, whose
normaliser underflows when a query's largest features miss every key's by more than the float
range (inputs with norms in the hundreds at d = 8): their output stays finite, the gradient of
the ratio does not.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from spectrans.kernels import favor_fused
from spectrans.kernels.rff import scale_keys_exactly

TRITON_KERNELS = False
"""Run the contraction on CUDA in the Triton kernels of :mod:`spectrans.kernels.favor_fused`
(same function, no ``(N, m)`` tensor written) where they take the widths (``d, e + 1 <= 16``).
Off: on an H200, under ``torch.compile``, they are slower than the torch paths (10.5 ms
against 8.5 for :class:`FavorContraction` and 7.1 through autograd at the Pathfinder-32 shape,
results/profile/triton_kernels.md); ``python -m experiments.probe_paths --tables performer``
times them all."""


UNROLLED_LOGITS_MAX_WIDTH = 0
r"""Head widths up to this form the feature logits ``x W^T`` as ``d`` broadcast products while
``torch.compile`` traces (:func:`feature_logits`); 0: always a matmul.

A matmul with an inner dimension of ``d = 4`` (LRA Pathfinder's head width) writes its
``(N, m)`` logits, 64 times the ``(N, d)`` input at ``m = 256``, and the feature softmax reads
them back: on an H200 the compiled Pathfinder-32 Performer step spends 2.75 ms in such products
and 6.2 ms in the feature kernels after them (``results/profile/profile_pathfinder_performer.md``,
commit ``6a61f3c``). As ``d`` products and sums the logits are pointwise work that Inductor fuses
into the softmax's reduction, so they are never written. Off until the two are timed side by
side on a GPU (``python -m experiments.bench_step --tasks pathfinder --mixers performer --compile
all --ab logit-unroll``: both in one process, windows interleaved)."""


def unrolls_logits(width: int) -> bool:
    """Whether the feature logits of heads ``width`` wide are unrolled in this trace."""
    return torch.compiler.is_compiling() and width <= UNROLLED_LOGITS_MAX_WIDTH


def feature_logits(x: Tensor, w_t: Tensor) -> Tensor:
    r"""``x @ w_t``: (..., N, m) from ``x`` (..., N, d) and ``w_t`` (d, m).

    While ``torch.compile`` traces and ``d <=`` :data:`UNROLLED_LOGITS_MAX_WIDTH`, as
    :math:`\sum_{a<d} x_{:, a}\, w_a` (one broadcast product per input column, pointwise work
    the compiler fuses into what consumes the logits); otherwise one matmul.
    """
    d = x.shape[-1]
    if not unrolls_logits(d):
        return x @ w_t  # (..., N, d) @ (d, m) -> (..., N, m)
    logits = x[..., 0:1] * w_t[0]  # (..., N, 1) * (m,) -> (..., N, m)
    for a in range(1, d):
        logits = logits + x[..., a : a + 1] * w_t[a]
    return logits


def fused_is_cheaper(head_dim: int, value_dim: int, num_features: int) -> bool:
    """Whether the hand-written backward writes less than autograd: ``(e + 1)(d + 1) <= m``."""
    return (value_dim + 1) * (head_dim + 1) <= num_features


REACH_FLOOR = 2.0**-100
"""Features whose key sum is below this fraction of the head's largest are dropped."""


def reached_features(reach: Tensor) -> Tensor:
    """``R_f >= REACH_FLOOR max_g R_g`` and ``R_f > 0``: (..., m, 1) bool from key sums (..., m, 1).

    A dropped feature weighs less than ``2^-100`` of the largest in a normaliser unless a
    query's logits differ by more than 69 between features.
    """
    floor = REACH_FLOOR * reach.amax(-2, keepdim=True)  # (..., 1, 1)
    return (reach >= floor) & (reach > 0)


DROPPED_LOGIT = -1e30
"""Bias of a dropped feature: its softmax weight is exactly 0 (and its gradients are finite)."""


def log_reach_bias(reach: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``log R`` (..., 1, m), dropped features at :data:`DROPPED_LOGIT`; ``reached``; safe sums.

    The safe key sums are ``where(reached, R, 1)`` (..., m, 1). ``reach`` (..., m, 1) are the
    key sums (with gradient or not; the safe sums carry it). No key at all (every ``R = 0``):
    the bias is 0, so a softmax over it stays finite (its values are then 0).
    """
    reached = reached_features(reach.detach())  # (..., m, 1)
    safe = torch.where(reached, reach, 1.0)  # (..., m, 1)
    bias = torch.where(reached, safe.log(), DROPPED_LOGIT)  # (..., m, 1)
    bias = torch.where(reached.any(-2, keepdim=True), bias, 0.0)  # (..., m, 1)
    return bias.transpose(-1, -2), reached, safe  # (..., 1, m), (..., m, 1), (..., m, 1)


def biased_logits(x: Tensor, w_t: Tensor, bias: Tensor) -> Tensor:
    """``x @ w_t + bias`` (..., N, m) as one matmul: ``x`` gets a ones column, ``w_t`` a row.

    Where :func:`feature_logits` unrolls the product, the bias is added to its result instead.

    Args:
        x: ``(..., N, d)``.
        w_t: ``(d, m)``.
        bias: ``(..., 1, m)``.
    """
    if unrolls_logits(x.shape[-1]):
        return feature_logits(x, w_t) + bias.to(w_t.dtype)  # (..., N, m)
    w_aug = torch.cat([w_t.expand(*bias.shape[:-2], *w_t.shape), bias.to(w_t.dtype)], -2)
    x_aug = torch.cat([x, x.new_ones(*x.shape[:-1], 1)], -1)  # (..., N, d+1)
    return x_aug @ w_aug  # (..., N, d+1) @ (..., d+1, m) -> (..., N, m)


def query_weights(x: Tensor, w_t: Tensor, kv: Tensor) -> tuple[Tensor, Tensor]:
    """``a = softmax(W x + log R)`` (..., N, m) and ``1 / R`` (..., m, 1), 0 where dropped.

    ``R = kv[..., -1]`` are the key sums of the features. ``a / R = exp(W x - s)`` with one
    constant ``s`` per query row: the query features in the frame where every normaliser is 1.
    No key at all (every ``R = 0``): ``1 / R = 0``, so the output is 0.
    """
    reach = kv[..., -1:].detach().to(torch.promote_types(kv.dtype, torch.float32))  # (.., m, 1)
    bias, reached, safe = log_reach_bias(reach)  # (..., 1, m), (..., m, 1), (..., m, 1)
    weights = torch.softmax(biased_logits(x, w_t, bias), dim=-1)  # (..., N, m)
    return weights, safe.reciprocal() * reached  # (..., m, 1)


def _key_factors(logits: Tensor, k: Tensor, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """``phi_k = softmax(logits)`` (N, m) and ``s`` (N, 1), float32 or wider."""
    peak, where = logits.max(dim=-1, keepdim=True)  # (..., N, 1) each
    phi_k = torch.softmax(logits, dim=-1)  # (..., N, m)
    wide = torch.promote_types(k.dtype, torch.float32)
    lse = peak.to(wide) - phi_k.gather(-1, where).to(wide).log()  # (..., N, 1)
    k_wide = k.to(wide)  # (..., N, d)
    log_scale = lse - 0.5 * (k_wide * k_wide).sum(-1, keepdim=True)  # (..., N, 1)
    return phi_k, scale_keys_exactly(log_scale, log_scale, key_mask)


def _forward_saving(
    q: Tensor, k: Tensor, v_aug: Tensor, projection: Tensor, key_mask: Tensor | None
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The forward of :class:`FavorContraction` and the tensors its backward needs."""
    w_t = projection.to(q.dtype).T  # (d, m)
    phi_k, scale = _key_factors(feature_logits(k, w_t), k, key_mask)  # (B, H, N, m), (B, H, N, 1)
    v_scaled = v_aug * scale.to(v_aug.dtype)  # (B, H, N, e+1)
    kv = (v_scaled.transpose(-1, -2) @ phi_k).transpose(-1, -2)  # (B, H, m, e+1)
    weights, inverse = query_weights(q, w_t, kv)  # (B, H, N, m), (B, H, m, 1)
    kv_mean = (kv * inverse).to(kv.dtype)  # (B, H, m, e+1): KV / R
    saved = (weights, phi_k, kv_mean, inverse, v_aug, v_scaled, scale, k, projection)
    return weights @ kv_mean, saved


def contract_columns(row: Tensor, blocks: Tensor) -> Tensor:
    """``sum_c row_nc blocks_nca``: (..., N, d) from ``row`` (..., N, c), ``blocks`` (..., N, c, d).

    On CUDA a product and a sum over the ``c = e + 1`` columns (one fused kernel when
    compiled). As a batched matrix product with a one-row matrix per token (what ``einsum``
    lowers to) cuBLAS runs matrix-vector kernels of at most 65,535 tokens a launch: 32
    launches per call and 10.7 of 31.4 ms of device time in the compiled Pathfinder-32 step
    (2M tokens, ``c = 5``, ``d = 4``; H200, bf16). On CPU the batched product is the faster
    form (1.4 against 2.5 ms at 32K tokens, 2 cores).
    """
    if row.is_cuda:
        return (row[..., :, None] * blocks).sum(-2)  # (..., N, c, 1) * (..., N, c, d) -> (.., N, d)
    return (row[..., None, :] @ blocks)[..., 0, :]  # (..., N, 1, c) @ (..., N, c, d) -> (..., N, d)


class FavorContraction(torch.autograd.Function):
    """``out = phi_q (phi_k^T (s V))`` with the backward of the module docstring."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        q: Tensor,
        k: Tensor,
        v_aug: Tensor,
        projection: Tensor,
        key_mask: Tensor | None,
    ) -> Tensor:
        """``out`` (B, H, N, e+1); saves the two feature tensors and the small factors."""
        out, saved = _forward_saving(q, k, v_aug, projection, key_mask)
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        """Gradients of q', k' and V (the ratio's, see the module docstring); none for W."""
        weights, phi_k, kv_mean, inverse, v_aug, v_scaled, scale, k, projection = ctx.saved_tensors
        dtype = weights.dtype
        wide = torch.promote_types(dtype, torch.float32)
        w = projection.to(dtype)  # (m, d)
        e1, d = kv_mean.shape[-1], w.shape[-1]
        grad = grad.to(dtype)  # (B, H, N, e+1)
        # phi_q = weights / R, so phi_q^T G = (weights^T G) / R and phi_q KV = weights (KV / R)
        grad_kv = ((weights.transpose(-1, -2) @ grad) * inverse).to(dtype)  # (B, H, m, e+1)
        kv_w = (kv_mean[..., :, :, None] * w[:, None, :]).flatten(-2)  # (B, H, m, (e+1) d)
        reach_q = (weights @ kv_w).unflatten(-1, (e1, d))  # (B, H, N, e+1, d)
        grad_q = contract_columns(grad.to(wide), reach_q.to(wide))  # (B, H, N, d)
        dkv_w = (grad_kv[..., :, :, None] * w[:, None, :]).flatten(-2)  # (B, H, m, (e+1) d)
        both = phi_k @ torch.cat((grad_kv, dkv_w), dim=-1)  # (B, H, N, (e+1)(d+1))
        grad_v_scaled = both[..., :e1].to(wide)  # (B, H, N, e+1)
        reach_k = both[..., e1:].unflatten(-1, (e1, d)).to(wide)  # (B, H, N, e+1, d)
        grad_k = contract_columns(v_scaled.to(wide), reach_k)  # (B, H, N, d)
        grad_scale = (grad_v_scaled * v_aug.to(wide)).sum(-1, keepdim=True)  # (B, H, N, 1)
        grad_k = grad_k - k.to(wide) * (scale * grad_scale)  # d s_j / d k'_j = -k'_j s_j
        grad_v = grad_v_scaled * scale  # (B, H, N, e+1)
        return grad_q.to(dtype), grad_k.to(dtype), grad_v.to(v_aug.dtype), None, None


def favor_contract(
    q: Tensor, k: Tensor, v_aug: Tensor, projection: Tensor, key_mask: Tensor | None
) -> Tensor:
    """Non-causal FAVOR+ numerators and normalisers up to a per-row factor.

    Args:
        q: ``(B, H, N, d)`` scaled queries ``q' = q d^{-1/4}``.
        k: ``(B, H, N, d)`` scaled keys (finite; masked keys are dropped through ``v_aug``).
        v_aug: ``(B, H, N, e + 1)`` values with a ones column, zero at masked keys.
        projection: ``(m, d)`` frequencies (a buffer: no gradient is formed for it).
        key_mask: broadcastable to ``(B, H, N)``, True on real keys (the per-head scale), or
            None.

    Returns:
        ``(B, H, N, e + 1)``: row i is ``c_i [numerator_i, normaliser_i]``, ``c_i > 0``.
    """
    if TRITON_KERNELS and q.is_cuda and favor_fused.supports(q, v_aug, key_mask):
        return favor_fused.favor_contract_fused(q, k, v_aug, projection, key_mask)
    return FavorContraction.apply(q, k, v_aug, projection, key_mask)
