"""Run an :class:`~spectrans.config.patterns.AttentionPattern` set over softmax attention.

The sequence is the concatenation of the token groups (``TokenSpec`` sizes, in order). Let
``g(i)`` be the group of position i and ``A[g, h]`` be True when a pattern lists ``g`` as a
query group and ``h`` as one of its key/value groups. Query i may see key j iff

    A[g(i), g(j)]  and  mask[j]  (and j <= i for a causal layer),

and the wrapped layer's own projections compute

    out_i = W_o sum_j softmax_j(q_i . k_j / sqrt(d) + bias_ij | allowed) v_j

with PyTorch SDPA on that block mask (``bias`` is ALiBi when the layer has ``alibi=True``).
A query row with no visible key (padding, or a group whose key groups are all padding)
outputs zero instead of NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from spectrans.config.patterns import AttentionPattern, TokenSpec, validate_attention_patterns
from spectrans.layers.alibi import alibi_bias
from spectrans.layers.attention.base import AttentionLayer, check_input, zero_masked
from spectrans.layers.attention.projections import merge_heads, project_qkv


def group_index(
    token_specs: Sequence[TokenSpec], seq_len: int, device: torch.device | None = None
) -> Tensor:
    """Group id of every position, shape (N,) long; sizes must sum to ``seq_len``."""
    sizes = [spec.size for spec in token_specs]
    if any(size is None for size in sizes) or sum(sizes) != seq_len:  # type: ignore[arg-type]
        raise ValueError(
            f"token group sizes {[s.to_dict() for s in token_specs]} must all be "
            f"given and sum to the sequence length {seq_len}"
        )
    return torch.repeat_interleave(
        torch.arange(len(sizes), device=device), torch.tensor(sizes, device=device)
    )  # (N,)


def pattern_block_mask(
    token_specs: Sequence[TokenSpec],
    patterns: Sequence[AttentionPattern],
    seq_len: int,
    device: torch.device | None = None,
) -> Tensor:
    """Boolean ``(N, N)`` matrix: True where query i may attend to key j by the patterns."""
    validate_attention_patterns(token_specs, patterns)
    position = {spec.name: index for index, spec in enumerate(token_specs)}
    groups = torch.zeros(len(token_specs), len(token_specs), dtype=torch.bool, device=device)
    for pattern in patterns:
        for query in pattern.query_tokens:
            for key in pattern.key_value_tokens:
                groups[position[query], position[key]] = True  # (G, G)
    gid = group_index(token_specs, seq_len, device)  # (N,)
    return groups[gid[:, None], gid[None, :]]  # (N, N)


class PatternAttention(AttentionLayer):
    """Softmax attention restricted by an attention-pattern set.

    Args:
        attention: A softmax-style layer (``has_scores``) with the projection attributes of
            :mod:`spectrans.layers.attention.projections` (``q_proj``, ``k_proj``, ``v_proj``,
            ``out_proj``, ``num_heads``); its weights are used as they are.
        patterns: Who attends to whom; validated against the groups at every call.
        token_specs: Default groups; ``forward(token_specs=...)`` overrides them per call.

    Raises:
        ValueError: the layer has no softmax scores to restrict.
    """

    has_queries_keys: ClassVar[bool] = True
    has_scores: ClassVar[bool] = True
    supports_causal: ClassVar[bool] = True

    def __init__(
        self,
        attention: AttentionLayer,
        patterns: Sequence[AttentionPattern],
        token_specs: Sequence[TokenSpec] | None = None,
    ) -> None:
        super().__init__()
        needed = ("q_proj", "k_proj", "v_proj", "out_proj", "num_heads")
        if not getattr(attention, "has_scores", False) or any(
            getattr(attention, name, None) is None for name in needed
        ):
            raise ValueError(
                f"attention patterns need a softmax-style attention with queries, "
                f"keys and scores, and {type(attention).__name__} has none; use "
                f"model.retrieval_encoding='independent' or attention=softmax"
            )
        self.attention = attention
        self.patterns = list(patterns)
        self.token_specs = list(token_specs) if token_specs is not None else None
        if self.token_specs is not None:
            validate_attention_patterns(self.token_specs, self.patterns)

    def _dropout_p(self) -> float:
        drop = getattr(self.attention, "dropout", 0.0)
        p = drop.p if isinstance(drop, torch.nn.Dropout) else drop
        return float(p) if isinstance(p, int | float) and self.training else 0.0

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        return_attention: bool = False,
        token_specs: Sequence[TokenSpec] | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """x: (B, N, D), mask: (B, N) bool -> (B, N, D) (and weights (B, H, N, N))."""
        mask = check_input(x, mask, getattr(self.attention, "hidden_dim", None))
        specs = token_specs if token_specs is not None else self.token_specs
        if specs is None:
            raise ValueError(
                "PatternAttention needs token_specs (the group sizes) at "
                "construction or in forward(token_specs=...)"
            )
        batch, seq_len, _ = x.shape
        allowed = pattern_block_mask(specs, self.patterns, seq_len, x.device)[None]  # (1, N, N)
        if mask is not None:
            allowed = allowed & mask[:, None, :]  # (B, N, N)
        if getattr(self.attention, "causal", False) is True:
            allowed = (
                allowed & torch.ones(seq_len, seq_len, dtype=torch.bool, device=x.device).tril()
            )
        allowed = allowed.expand(batch, seq_len, seq_len)  # (B, N, N)
        has_key = allowed.any(-1)  # (B, N)
        eye = torch.eye(seq_len, dtype=torch.bool, device=x.device)  # (N, N)
        allowed = allowed | (eye[None] & ~has_key[..., None])  # (B, N, N), no empty rows
        q, k, v = project_qkv(self.attention, x)  # (B, H, N, d) each
        bias = torch.zeros(allowed.shape, dtype=q.dtype, device=x.device)[:, None]
        bias = bias.masked_fill(~allowed[:, None], float("-inf"))  # (B, 1, N, N)
        if getattr(self.attention, "alibi", False) is True:
            heads = self.attention.num_heads
            bias = bias + alibi_bias(heads, seq_len, x.device).to(q.dtype)[None]  # (B, H, N, N)
        if return_attention:
            scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5 + bias  # (B, H, N, N)
            weights = scores.softmax(-1)  # (B, H, N, N)
            out = F.dropout(weights, self._dropout_p(), self.training) @ v  # (B, H, N, d)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=bias, dropout_p=self._dropout_p()
            )  # (B, H, N, d)
        out = self.attention.out_proj(merge_heads(out))  # (B, N, D)
        out = zero_masked(out, has_key if mask is None else has_key & mask)  # (B, N, D)
        return (out, weights) if return_attention else out
