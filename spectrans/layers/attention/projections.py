"""Shared multi-head projection plumbing: q/k/v/out projections, QK-norm, RoPE.

Layers that have queries and keys call :func:`add_qkv_projections` in ``__init__`` (so the
attributes ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` of the spectrans API exist) and
:func:`project_qkv` / :func:`merge_heads` in ``forward``.
"""

from __future__ import annotations

from torch import Tensor, nn

from spectrans.config.core import HEAD_DIM_HINT, check_divides
from spectrans.layers.attention.base import init_linear
from spectrans.layers.rotary import apply_rotary, rotary_angles


def add_qkv_projections(
    layer: nn.Module,
    hidden_dim: int,
    num_heads: int,
    head_dim: int | None,
    *,
    bias: bool,
    qk_norm: bool,
    use_rope: bool,
    init_weights: str,
    with_keys: bool = True,
) -> int:
    """Create ``q_proj``, ``k_proj`` (if ``with_keys``), ``v_proj``, ``out_proj`` on ``layer``.

    Shapes: D -> H*d for q/k/v, H*d -> D for out. Also sets ``num_heads``, ``head_dim``,
    ``use_rope`` and optional ``q_norm``/``k_norm`` (LayerNorm over d).

    Returns:
        The head width d actually used (``resolve_head_dim``).
    """
    head_dim = resolve_head_dim(hidden_dim, num_heads, head_dim)
    inner = num_heads * head_dim
    if use_rope and head_dim % 2:
        raise ValueError(f"use_rope needs an even head_dim, got {head_dim}")
    layer.num_heads, layer.head_dim, layer.use_rope = num_heads, head_dim, use_rope
    layer.q_proj = nn.Linear(hidden_dim, inner, bias=bias)
    layer.k_proj = nn.Linear(hidden_dim, inner, bias=bias) if with_keys else None
    layer.v_proj = nn.Linear(hidden_dim, inner, bias=bias)
    layer.out_proj = nn.Linear(inner, hidden_dim, bias=bias)
    layer.q_norm = nn.LayerNorm(head_dim) if qk_norm else None
    layer.k_norm = nn.LayerNorm(head_dim) if qk_norm and with_keys else None
    for proj in (layer.q_proj, layer.k_proj, layer.v_proj):
        if proj is not None:
            init_linear(proj, init_weights)
    init_linear(layer.out_proj, init_weights, zero=init_weights == "truncnormal002-identity")
    return head_dim


def resolve_head_dim(hidden_dim: int, num_heads: int, head_dim: int | None) -> int:
    """``head_dim`` or ``hidden_dim // num_heads`` (which must then divide exactly)."""
    if num_heads <= 0 or hidden_dim <= 0:
        raise ValueError(
            f"hidden_dim and num_heads must be positive, got hidden_dim="
            f"{hidden_dim}, num_heads={num_heads}"
        )
    if head_dim is not None:
        if head_dim <= 0:
            raise ValueError(f"head_dim must be positive, got {head_dim}")
        return head_dim
    check_divides(hidden_dim, num_heads, "num_heads", HEAD_DIM_HINT)
    return hidden_dim // num_heads


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, H*d) -> (B, H, N, d)."""
    batch, seq_len, _ = x.shape
    return x.view(batch, seq_len, num_heads, -1).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, N, d) -> (B, N, H*d)."""
    batch, heads, seq_len, dim = x.shape
    return x.transpose(1, 2).reshape(batch, seq_len, heads * dim)


def project_qkv(layer: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """Project x (B, N, D) to per-head q, k, v (B, H, N, d), QK-norm and RoPE applied."""
    q = split_heads(layer.q_proj(x), layer.num_heads)  # (B, H, N, d)
    k = split_heads(layer.k_proj(x), layer.num_heads) if layer.k_proj is not None else None
    v = split_heads(layer.v_proj(x), layer.num_heads)  # (B, H, N, d)
    if layer.q_norm is not None:
        q = layer.q_norm(q)
    if layer.k_norm is not None and k is not None:
        k = layer.k_norm(k)
    if layer.use_rope:
        cos, sin = rotary_angles(x.shape[1], layer.head_dim, device=x.device)  # (N, d/2)
        q = apply_rotary(q, cos, sin)
        k = apply_rotary(k, cos, sin) if k is not None else None
    return q, k, v
