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

Masks: the key features and values of masked positions are zeroed, so masked tokens add
nothing to a numerator or a denominator.

Normalisers: all contractions run in float32 (also under bf16 autocast). Positive features
(FAVOR+, ReLU) give normalisers > 0 unless no key is visible, where the numerator is 0 too;
they are clamped at the smallest positive float, which changes nothing else. Signed
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

from spectrans.kernels.rff import FeatureMap


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
    kv = torch.einsum("bhnm,bhne->bhme", k_feat, v)  # (B, H, m, e)
    k_sum = k_feat.sum(dim=2)  # (B, H, m)
    num = torch.einsum("bhnm,bhme->bhne", q_feat, kv)  # (B, H, N, e)
    den = torch.einsum("bhnm,bhm->bhn", q_feat, k_sum)  # (B, H, N)
    bound = None
    if signed:
        bound = q_feat.norm(dim=-1) * k_feat.norm(dim=-1).sum(dim=-1, keepdim=True)  # (B, H, N)
    return num / safe_normaliser(den, bound, signed=signed, eps=eps)[..., None]


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

    Memory is ``O(B H ((N/C) m e + N C))``: one ``(m, e)`` prefix state per chunk and a
    ``C x C`` block per chunk; the default ``C = sqrt(m e)`` (clamped to [16, 256]) balances
    the two terms.
    """
    batch, heads, seq_len, m = q_feat.shape
    bound = None
    if signed:
        bound = q_feat.norm(dim=-1) * k_feat.norm(dim=-1).cumsum(dim=-1)  # (B, H, N)
    if chunk_size is None:
        chunk_size = min(256, max(16, round(math.sqrt(m * v.shape[-1]))))
    chunk = max(1, min(chunk_size, seq_len))
    pad = (-seq_len) % chunk
    if pad:
        q_feat, k_feat, v = (
            torch.nn.functional.pad(t, (0, 0, 0, pad)) for t in (q_feat, k_feat, v)
        )
    n_chunks = (seq_len + pad) // chunk
    qc = q_feat.reshape(batch, heads, n_chunks, chunk, m)  # (B, H, K, C, m)
    kc = k_feat.reshape(batch, heads, n_chunks, chunk, m)  # (B, H, K, C, m)
    vc = v.reshape(batch, heads, n_chunks, chunk, -1)  # (B, H, K, C, e)
    kv_chunk = torch.einsum("bhkcm,bhkce->bhkme", kc, vc)  # (B, H, K, m, e)
    k_chunk = kc.sum(dim=3)  # (B, H, K, m)
    kv_prev = exclusive_cumsum(kv_chunk, dim=2)  # (B, H, K, m, e), strictly earlier chunks
    k_prev = exclusive_cumsum(k_chunk, dim=2)  # (B, H, K, m)
    tril = torch.ones(chunk, chunk, dtype=torch.bool, device=q_feat.device).tril()  # (C, C)
    scores = torch.einsum("bhkcm,bhkdm->bhkcd", qc, kc) * tril  # (B, H, K, C, C)
    num = torch.einsum("bhkcm,bhkme->bhkce", qc, kv_prev) + torch.einsum(
        "bhkcd,bhkde->bhkce", scores, vc
    )  # (B, H, K, C, e)
    den = torch.einsum("bhkcm,bhkm->bhkc", qc, k_prev) + scores.sum(dim=-1)  # (B, H, K, C)
    out = num.reshape(batch, heads, n_chunks * chunk, -1)[:, :, :seq_len]  # (B, H, N, e)
    den = den.reshape(batch, heads, n_chunks * chunk)[:, :, :seq_len]  # (B, H, N)
    return out / safe_normaliser(den, bound, signed=signed, eps=eps)[..., None]


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
    q_feat, k_feat, v = q_feat.float(), k_feat.float(), v.float()
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
        ``(B, H, N, e)`` float32.
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


def feature_attention(
    kernel: FeatureMap, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, *, causal: bool
) -> Tensor:
    """Linear attention through the feature map ``kernel``, in float32 with autocast off.

    Args:
        kernel: The feature map ``phi`` (its ``signed`` picks the normaliser clamp).
        q: ``(B, H, N, d)`` queries.
        k: ``(B, H, N, d)`` keys.
        v: ``(B, H, N, e)`` values.
        mask: ``(B, N)`` bool, True on real tokens, or None.
        causal: Sum over ``j <= i`` only.

    Returns:
        ``(B, H, N, e)`` float32.
    """
    key_mask = mask[:, None, :] if mask is not None else None  # (B, 1, N)
    with torch.autocast(device_type=v.device.type, enabled=False):
        q_feat = kernel(q.float(), is_query=True)  # (B, H, N, m)
        k_feat = kernel(k.float(), is_query=False, mask=key_mask)  # (B, H, N, m)
        return _linear_attention_fp32(
            q_feat, k_feat, v, mask, causal=causal, signed=kernel.signed, eps=1e-3, chunk_size=None
        )
