"""Linear (kernelised) attention: the contractions shared by every feature-map layer.

With feature maps ``phi`` (queries) and ``psi`` (keys) of width m, attention with kernel
``k(q, k) ~= phi(q).psi(k)`` is

    out_i = sum_j k(q_i, k_j) v_j / sum_j k(q_i, k_j)
          = phi(q_i)^T (sum_j psi(k_j) v_j^T) / phi(q_i)^T (sum_j psi(k_j)),

O(N m e) time instead of O(N^2). Causal attention restricts the sums to ``j <= i``: prefix
sums over the sequence. They are computed per chunk of C positions: the state
``S = sum_{j < chunk} psi(k_j) v_j^T`` (m, e) and ``z = sum_{j < chunk} psi(k_j)`` (m,) is
carried from chunk to chunk (a torch.cumsum over chunk totals), and inside a chunk the
lower-triangular C x C products are formed directly. Every output at i uses only positions
``j <= i``: causality is exact by construction.

Numerator and normaliser come out of the same contractions: with ``[v, 1]`` (e + 1 columns)
as values, ``phi(q_i)^T (sum_j psi(k_j) [v_j, 1]^T)`` holds the numerator in its first e
columns and the normaliser in the last, so each ``(N, m)`` feature tensor is read once per
contraction. Per-key factors of the key features (:meth:`FeatureMap.factored`) are multiplied
into these ``(N, e + 1)`` values instead of into the ``(N, m)`` features.

Masks: masked keys add nothing to a numerator or a normaliser. :func:`linear_attention`
zeroes their features and values; :func:`feature_attention` with positive maps zeroes their
``(N, d)`` keys (so their features are finite) and their rows of ``[v, 1]``.

Precision: :func:`linear_attention` and signed feature maps run in float32 (float64 inputs in
float64), also under autocast. Positive feature maps in :func:`feature_attention` form the
features and both contractions in the compute dtype (:func:`compute_dtype`: bfloat16 under
bf16 autocast; matmuls accumulate in float32) and divide in float32; causal prefix states are
summed in float32.

Normalisers: positive features (FAVOR+, ReLU) give normalisers > 0 unless no key is visible,
where the numerator is 0 too; they are clamped at the smallest positive float, which changes
nothing else. In floating point a normaliser can also underflow when a query's largest
features miss every key's by more than the float range; the forward stays finite but the
gradient of the ratio divides by 0. Non-causal FAVOR+ without the fused backward therefore
runs as a softmax over features weighed by the key sums (:func:`favor_bidirectional`), whose
normaliser is exactly 1. Signed
(trigonometric) features can give normalisers ``z_i <= 0``; they are clamped away from zero
keeping their sign, relative to the Cauchy-Schwarz bound ``|z_i| <= b_i =
|phi(q_i)| sum_j |psi(k_j)|`` (visible j): ``sign(z_i) max(|z_i|, eps b_i)``, ``sign(0) = +1``.
The clamp is invariant to rescaling the query features of a row or all key features of a
head, so feature stabilisers still cancel exactly (and causality stays exact). It bounds the
output, but a negative normaliser still flips the sign of that row: a documented limitation of
trigonometric estimates of positive kernels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from spectrans.kernels.favor import PositiveRandomFeatures
from spectrans.kernels.rff import FeatureMap
from spectrans.layers.attention.favor_contract import (
    biased_logits,
    favor_contract,
    fused_is_cheaper,
    log_reach_bias,
)


def safe_normaliser(
    den: Tensor, bound: Tensor | None = None, *, signed: bool, eps: float = 1e-3
) -> Tensor:
    """Guard a normaliser against division by ~0 (see the module docstring).

    Args:
        den: Normalisers ``z``, any shape.
        bound: ``b >= |z|`` of the same shape (signed features only).
        signed: Sign-preserving relative clamp ``sign(z) max(|z|, eps b)`` (else ``z > 0``).
        eps: Relative clamp of signed normalisers.
    """
    tiny = torch.finfo(den.dtype).tiny
    if not signed:
        return den.clamp_min(tiny)
    floor = (eps * bound).clamp_min(tiny) if bound is not None else torch.full_like(den, tiny)
    sign = torch.where(den < 0, -torch.ones_like(den), torch.ones_like(den))
    return sign * torch.maximum(den.abs(), floor)


def exclusive_cumsum(x: Tensor, dim: int) -> Tensor:
    """``y_k = sum_{j < k} x_j`` along ``dim`` (a shifted cumsum: no subtraction, exact)."""
    total = x.cumsum(dim=dim).narrow(dim, 0, x.shape[dim] - 1)
    return torch.cat((torch.zeros_like(x.narrow(dim, 0, 1)), total), dim=dim)


def _mask_keys(k_feat: Tensor, v: Tensor, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Zero key features and values at masked positions; key_mask (B, N) True = real."""
    if key_mask is None:
        return k_feat, v
    keep = key_mask[:, None, :, None]  # (B, 1, N, 1)
    return torch.where(keep, k_feat, 0.0), torch.where(keep, v, 0.0)


def compute_dtype(v: Tensor) -> torch.dtype:
    """The dtype of the feature tensors and contractions of positive feature maps.

    bfloat16 under bf16 autocast and for bfloat16 inputs; float64 for float64 inputs; float32
    otherwise (float16 keeps float32: its range is too small for un-normalised sums).
    """
    device_type = v.device.type
    if torch.is_autocast_enabled(device_type):
        if torch.get_autocast_dtype(device_type) == torch.bfloat16:
            return torch.bfloat16
        return torch.float32
    if v.dtype in (torch.float64, torch.bfloat16):
        return v.dtype
    return torch.float32


def augment_values(v: Tensor, scale: Tensor | None = None) -> Tensor:
    """``[v, 1] * scale``: values with a ones column that collects the normaliser.

    Args:
        v: ``(B, H, N, e)`` values.
        scale: ``(B, H|1, N, 1)`` per-key factors of the key features, or None.

    Returns:
        ``(B, H, N, e + 1)`` in ``v``'s dtype.
    """
    v_aug = torch.cat((v, torch.ones_like(v[..., :1])), dim=-1)  # (B, H, N, e+1)
    return v_aug if scale is None else v_aug * scale.to(v.dtype)


def normalise(out_aug: Tensor, bound: Tensor | None, *, signed: bool, eps: float) -> Tensor:
    """Split ``(..., e + 1)`` into numerator and normaliser and divide in float32 (or wider).

    Args:
        out_aug: ``(B, H, N, e + 1)`` numerators and (last column) normalisers.
        bound: ``(B, H, N)`` Cauchy-Schwarz bounds of signed normalisers, or None.
        signed: Sign-preserving normaliser clamp.
        eps: Relative clamp of signed normalisers.

    Returns:
        ``(B, H, N, e)`` float32 (float64 for float64 inputs).
    """
    out_aug = out_aug.to(torch.promote_types(out_aug.dtype, torch.float32))
    den = safe_normaliser(out_aug[..., -1], bound, signed=signed, eps=eps)  # (B, H, N)
    return out_aug[..., :-1] / den[..., None]


def contract_bidirectional(q_feat: Tensor, k_feat: Tensor, v_aug: Tensor) -> Tensor:
    """``phi(Q) (psi(K)^T V_aug)``: two matmuls, each reading one ``(N, m)`` tensor once.

    ``psi(K)^T V_aug`` is formed as ``(V_aug^T psi(K))^T`` so that the gradient of ``psi(K)``
    comes out contiguous (no copy of an ``(N, m)`` tensor in the backward).

    Args:
        q_feat: ``(B, H, N, m)``.
        k_feat: ``(B, H|1, N, m)``.
        v_aug: ``(B, H, N, e + 1)``.

    Returns:
        ``(B, H, N, e + 1)`` in the inputs' dtype (float32 accumulation).
    """
    kv = (v_aug.transpose(-1, -2) @ k_feat).transpose(-1, -2)  # (B, H, m, e+1)
    return q_feat @ kv  # (B, H, N, e+1)


def contract_causal(
    q_feat: Tensor, k_feat: Tensor, v_aug: Tensor, chunk_size: int | None = None
) -> Tensor:
    """``sum_{j <= i} (phi(q_i).psi(k_j)) v_aug_j`` by chunked prefix sums.

    Memory is ``O(B H ((N/C) m e + N C))``: one ``(m, e + 1)`` prefix state per chunk and a
    ``C x C`` block per chunk; the default ``C = sqrt(m e)`` (clamped to [16, 256]) balances
    the two terms. Prefix states are summed in float32 (or wider).

    Args:
        q_feat: ``(B, H, N, m)``.
        k_feat: ``(B, H, N, m)``.
        v_aug: ``(B, H, N, e + 1)``.
        chunk_size: Chunk length C.

    Returns:
        ``(B, H, N, e + 1)`` float32 (float64 for float64 inputs).
    """
    batch, heads, seq_len, m = q_feat.shape
    wide = torch.promote_types(q_feat.dtype, torch.float32)
    if chunk_size is None:
        chunk_size = min(256, max(16, round(math.sqrt(m * max(1, v_aug.shape[-1] - 1)))))
    chunk = max(1, min(chunk_size, seq_len))
    pad = (-seq_len) % chunk
    if pad:
        q_feat, k_feat, v_aug = (
            torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in (q_feat, k_feat, v_aug)
        )
    n_chunks = (seq_len + pad) // chunk
    qc = q_feat.reshape(batch, heads, n_chunks, chunk, m)  # (B, H, K, C, m)
    kc = k_feat.reshape(batch, heads, n_chunks, chunk, m)  # (B, H, K, C, m)
    vc = v_aug.reshape(batch, heads, n_chunks, chunk, -1)  # (B, H, K, C, e+1)
    kv_chunk = kc.transpose(-1, -2) @ vc  # (B, H, K, m, e+1)
    kv_prev = exclusive_cumsum(kv_chunk.to(wide), dim=2).to(q_feat.dtype)  # earlier chunks
    scores = (qc @ kc.transpose(-1, -2)).tril()  # (B, H, K, C, C), j <= i inside a chunk
    num = (qc @ kv_prev).to(wide) + (scores @ vc).to(wide)  # (B, H, K, C, e+1)
    return num.reshape(batch, heads, n_chunks * chunk, -1)[:, :, :seq_len]  # (B, H, N, e+1)


def bidirectional_linear_attention(
    q_feat: Tensor, k_feat: Tensor, v: Tensor, *, signed: bool, eps: float = 1e-3
) -> Tensor:
    """Non-causal linear attention.

    Args:
        q_feat: ``(B, H, N, m)`` query features.
        k_feat: ``(B, H, N, m)`` key features (already zero at masked keys).
        v: ``(B, H, N, e)`` values.
        signed: Features may be negative (sign-preserving normaliser clamp).
        eps: Relative clamp of signed normalisers.

    Returns:
        ``(B, H, N, e)``.
    """
    out_aug = contract_bidirectional(q_feat, k_feat, augment_values(v))  # (B, H, N, e+1)
    bound = None
    if signed:
        bound = q_feat.norm(dim=-1) * k_feat.norm(dim=-1).sum(dim=-1, keepdim=True)  # (B, H, N)
    return normalise(out_aug, bound, signed=signed, eps=eps)


def causal_linear_attention(
    q_feat: Tensor,
    k_feat: Tensor,
    v: Tensor,
    *,
    signed: bool,
    eps: float = 1e-3,
    chunk_size: int | None = None,
) -> Tensor:
    """Causal linear attention by chunked prefix sums (shapes as the bidirectional one).

    See :func:`contract_causal` for the chunking and its memory.
    """
    bound = None
    if signed:
        bound = q_feat.norm(dim=-1) * k_feat.norm(dim=-1).cumsum(dim=-1)  # (B, H, N)
    out_aug = contract_causal(q_feat, k_feat, augment_values(v), chunk_size)  # (B, H, N, e+1)
    return normalise(out_aug, bound, signed=signed, eps=eps)


def _linear_attention_fp32(
    q_feat: Tensor,
    k_feat: Tensor,
    v: Tensor,
    key_mask: Tensor | None,
    *,
    causal: bool,
    signed: bool,
    eps: float,
    chunk_size: int | None,
) -> Tensor:
    """:func:`linear_attention` body; the caller has turned autocast off."""
    wide = torch.promote_types(v.dtype, torch.float32)
    q_feat, k_feat, v = q_feat.to(wide), k_feat.to(wide), v.to(wide)
    k_feat, v = _mask_keys(k_feat, v, key_mask)
    if causal:
        return causal_linear_attention(
            q_feat, k_feat, v, signed=signed, eps=eps, chunk_size=chunk_size
        )
    return bidirectional_linear_attention(q_feat, k_feat, v, signed=signed, eps=eps)


def linear_attention(
    q_feat: Tensor,
    k_feat: Tensor,
    v: Tensor,
    *,
    key_mask: Tensor | None = None,
    causal: bool = False,
    signed: bool = False,
    eps: float = 1e-3,
    chunk_size: int | None = None,
) -> Tensor:
    """Kernelised attention ``phi(Q) (psi(K)^T V) / phi(Q) psi(K)^T 1`` in float32.

    Args:
        q_feat: ``(B, H, N, m)`` query features.
        k_feat: ``(B, H, N, m)`` key features.
        v: ``(B, H, N, e)`` values.
        key_mask: ``(B, N)`` bool, True on real tokens; masked keys and values are zeroed
            (the one place where masked keys are dropped).
        causal: Sum over ``j <= i`` only.
        signed: Features can be negative (sign-preserving normaliser clamp).
        eps: Relative clamp of signed normalisers.
        chunk_size: Chunk length C of the causal prefix sums (default ``sqrt(m e)``).

    Returns:
        ``(B, H, N, e)`` float32 (float64 for float64 values).
    """
    with torch.autocast(device_type=v.device.type, enabled=False):
        return _linear_attention_fp32(
            q_feat,
            k_feat,
            v,
            key_mask,
            causal=causal,
            signed=signed,
            eps=eps,
            chunk_size=chunk_size,
        )


def _use_fused(kernel: FeatureMap, v: Tensor, *, causal: bool) -> bool:
    """FAVOR+, non-causal, fixed frequencies, and the fused backward writes less."""
    if causal or not isinstance(kernel, PositiveRandomFeatures):
        return False
    if kernel.projection.requires_grad:
        return False
    return fused_is_cheaper(kernel.input_dim, v.shape[-1], kernel.num_features)


def _drop_masked(v_aug: Tensor, keep: Tensor | None) -> Tensor:
    """Zero the rows of ``[v, 1]`` (B, H, N, e+1) at masked keys; keep (B, 1, N, 1) or None."""
    return v_aug if keep is None else torch.where(keep, v_aug, 0.0)


def favor_bidirectional(
    kernel: PositiveRandomFeatures, q: Tensor, k_feat: Tensor, v_aug: Tensor
) -> Tensor:
    r"""Non-causal FAVOR+ attention as a softmax over features weighed by the key sums.

    With ``L = W q'`` (``q' = q d^{-1/4}``), ``K V = psi(K)^T [v, 1]`` ``(m, e + 1)`` and its
    last column :math:`R_f = \sum_j \psi_f(k_j)`, the FAVOR+ ratio is

    .. math::  \frac{\sum_f e^{L_f} (KV)_f}{\sum_f e^{L_f} R_f}
        = \sum_f \mathrm{softmax}_f(L_f + \log R_f)\, \frac{(KV)_f}{R_f},

    a softmax over features of per-feature value means. The normaliser is exactly 1 and every
    factor is bounded, so nothing underflows whatever the norms of queries and keys: the query
    features ``softmax(L)`` of :func:`~spectrans.kernels.favor.favor_factors` leave the
    normaliser at :math:`\sum_f \mathrm{softmax}(L)_f R_f`, which underflows when a query's
    largest features miss every key's by more than the float range, and the gradient of the
    ratio then divides by 0. Features with small :math:`R_f` are dropped
    (:func:`~spectrans.layers.attention.favor_contract.reached_features`). The mean
    :math:`(KV)_f / R_f` is differentiated as :math:`(d(KV)_f - \bar v_f\, dR_f) / R_f` (no
    :math:`R_f^2`, which would underflow).

    Args:
        kernel: The FAVOR+ feature map (its projection ``W``).
        q: ``(B, H, N, d)`` queries.
        k_feat: ``(B, H|1, N, m)`` key features (their per-key factor is in ``v_aug``).
        v_aug: ``(B, H, N, e + 1)`` ``[v, 1]`` times the key factors, zero at masked keys.

    Returns:
        ``(B, H, N, e)`` attention outputs (0 where no key is visible), float32 or wider.
    """
    kv = (v_aug.transpose(-1, -2) @ k_feat).transpose(-1, -2)  # (B, H, m, e+1)
    wide = torch.promote_types(kv.dtype, torch.float32)
    kv = kv.to(wide)
    reach = kv[..., -1:]  # (B, H, m, 1): R_f
    bias, reached, safe = log_reach_bias(reach)  # (B, H, 1, m), (B, H, m, 1), (B, H, m, 1)
    inverse = safe.detach().reciprocal()  # (B, H, m, 1)
    mean_value = (kv * inverse).detach()  # (B, H, m, e+1): (KV)_f / R_f
    mean = (kv - mean_value * safe) * inverse + mean_value  # same value, gradient of KV / R
    mean = torch.where(reached, mean, 0.0)[..., :-1]  # (B, H, m, e)
    x = q * q.shape[-1] ** -0.25  # (B, H, N, d)
    w_t = kernel.snapshot(kernel.projection).to(x.dtype).T  # (d, m)
    weights = torch.softmax(biased_logits(x, w_t, bias), dim=-1)  # (B, H, N, m)
    return (weights @ mean.to(weights.dtype)).to(wide)  # (B, H, N, m) @ (m, e) -> (B, H, N, e)


def _positive_feature_attention(
    kernel: FeatureMap,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None,
    *,
    causal: bool,
    dtype: torch.dtype,
) -> Tensor:
    """:func:`feature_attention` for positive maps in ``dtype``; the caller turned autocast off.

    Masked keys are zeroed in ``k`` (``(N, d)``, so their features are finite) and their
    values and ones are zeroed in ``[v, 1]``: they add nothing, whatever their features. The
    per-key factor of the key features multiplies ``[v, 1]``; a per-row factor of the query
    features cancels in the ratio and is dropped. Non-causal FAVOR+ with ``(e + 1)(d + 1) <= m``
    runs :func:`~spectrans.layers.attention.favor_contract.favor_contract` (same function, a
    backward that writes no ``(N, m)`` tensor); with more value and head dims it runs
    :func:`favor_bidirectional` (a softmax over features weighed by the key sums).
    """
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    keep = mask[:, None, :, None] if mask is not None else None  # (B, 1, N, 1)
    if keep is not None:
        k = torch.where(keep, k, 0.0)  # (B, H, N, d)
    key_mask = mask[:, None, :] if mask is not None else None  # (B, 1, N)
    if _use_fused(kernel, v, causal=causal):
        x_scale = q.shape[-1] ** -0.25
        v_aug = _drop_masked(augment_values(v), keep)  # (B, H, N, e+1)
        projection = kernel.snapshot(kernel.projection)  # (m, d)
        out_aug = favor_contract(q * x_scale, k * x_scale, v_aug, projection, key_mask)
        return normalise(out_aug, None, signed=False, eps=1e-3)
    k_feat, k_scale = kernel.factored(k, is_query=False, mask=key_mask)  # (B, H, N, m)
    v_aug = _drop_masked(augment_values(v, k_scale), keep)  # (B, H, N, e+1)
    if not causal and isinstance(kernel, PositiveRandomFeatures):
        return favor_bidirectional(kernel, q, k_feat, v_aug)  # (B, H, N, e)
    q_feat, _ = kernel.factored(q, is_query=True)  # (B, H, N, m)
    if causal:
        out_aug = contract_causal(q_feat, k_feat, v_aug)  # (B, H, N, e+1)
    else:
        out_aug = contract_bidirectional(q_feat, k_feat, v_aug)  # (B, H, N, e+1)
    return normalise(out_aug, None, signed=False, eps=1e-3)


def feature_attention(
    kernel: FeatureMap, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, *, causal: bool
) -> Tensor:
    """Linear attention through the feature map ``kernel``.

    Positive maps (``kernel.signed`` False: FAVOR+, ReLU) run in :func:`compute_dtype` from
    the factored features (:meth:`FeatureMap.factored`); signed maps run in float32. Autocast
    is off inside: dtypes are explicit.

    Args:
        kernel: The feature map ``phi`` (its ``signed`` picks the normaliser clamp).
        q: ``(B, H, N, d)`` queries.
        k: ``(B, H, N, d)`` keys.
        v: ``(B, H, N, e)`` values.
        mask: ``(B, N)`` bool, True on real tokens, or None.
        causal: Sum over ``j <= i`` only.

    Returns:
        ``(B, H, N, e)`` float32 (float64 for float64 inputs).
    """
    dtype = compute_dtype(v)  # read before autocast is turned off
    with torch.autocast(device_type=v.device.type, enabled=False):
        if not kernel.signed:
            return _positive_feature_attention(kernel, q, k, v, mask, causal=causal, dtype=dtype)
        key_mask = mask[:, None, :] if mask is not None else None  # (B, 1, N)
        wide = torch.promote_types(v.dtype, torch.float32)
        q_feat = kernel(q.to(wide), is_query=True)  # (B, H, N, m)
        k_feat = kernel(k.to(wide), is_query=False, mask=key_mask)  # (B, H, N, m)
        return _linear_attention_fp32(
            q_feat, k_feat, v, mask, causal=causal, signed=True, eps=1e-3, chunk_size=None
        )
