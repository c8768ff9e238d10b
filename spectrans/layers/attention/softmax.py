r"""Exact multi-head softmax attention through PyTorch SDPA (the O(n^2) baseline).

    out = softmax(Q K^T / sqrt(d) + B) V,

with ``B`` the sum of: ``-inf`` on masked keys (key padding), ``-inf`` above the diagonal
(causal), and ALiBi's ``-m_h |i - j|`` (optional). Queries and keys may be QK-normalised and
rotated by RoPE (:mod:`spectrans.layers.attention.projections`).

A query row whose keys are all masked would be ``softmax`` of all ``-inf`` (NaN). Such a row
belongs to a masked query (an unmasked query always sees itself), so its keys are unmasked
for the softmax and its output is zeroed afterwards.

Masked queries (``masked_queries``): ``zero`` (default) gives every masked position the output
0, as every mixer of the library does. ``all_keys`` is the LRA code's rule: it masks
attention with ``make_attention_mask(q_mask, k_mask)`` turned into an additive ``-1e10`` on
every masked score, so a masked query's row is ``s_j - 10^{10}`` for every key ``j``. In
float32 (the LRA models' attention dtype) ``10^{10}`` is exact and its spacing is 1024, so
every ``s_j`` with ``|s_j| < 512`` rounds away and the row's weights are uniform: the query
outputs the mean of all ``N`` values, masked tokens' included,

    out_i = W_o (1/N) \sum_{j=1}^{N} v_j        (i masked),

while unmasked queries still attend to unmasked keys only. Attention dropout is not applied to
these uniform rows (the mean is exact).

Fused kernels: PyTorch's flash and memory-efficient SDPA kernels need a head width that is a
multiple of 8; otherwise SDPA falls back to the math kernel, which materialises every
``N x N`` matrix. Zero-padding q, k and v from ``d`` to ``d' = 8 \lceil d/8 \rceil`` columns
and keeping the scale ``1/\sqrt{d}`` of the true width is exact: the padded columns add
``0`` to every score :math:`q_i \cdot k_j`, and the padded output columns (weights times zero
values) are cropped. A key-padding mask without causal masking or ALiBi is passed as a
broadcast ``(B, 1, 1, N)`` mask, never an ``N x N`` one; on GPUs with flash attention such a
mask instead cuts each row into a segment of real tokens and one of padding for the
variable-length flash kernel (:mod:`spectrans.layers.attention.key_padding`), which reads no
mask and skips the scores between real and padded tokens.

Small head widths: without a mask or causal masking, and for ``d <=``
:data:`SMALL_HEAD_MAX_DIM` on CUDA, attention can run on the Triton kernels of
:mod:`spectrans.kernels.small_head_attention` (the same function, with its own dropout draws),
which compute with ``d`` padded to 16 instead of the fused kernels' 64-wide tiles.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch
from torch import Tensor, nn

from spectrans.config.layers.attention import SoftmaxAttentionConfig
from spectrans.kernels import small_head_attention as small_head
from spectrans.layers.alibi import alibi_bias
from spectrans.layers.attention import key_padding
from spectrans.layers.attention.base import (
    AttentionLayer,
    check_input,
    pad_head_width,
    zero_masked,
)
from spectrans.layers.attention.projections import (
    add_qkv_projections,
    merge_heads,
    project_qkv,
)
from spectrans.registry import register_mixer
from spectrans.transforms.precision import matmul_dtype


@register_mixer(
    "softmax",
    SoftmaxAttentionConfig,
    family="attention",
    complexity="O(n^2)",
    description="exact softmax attention (SDPA)",
    paper="Vaswani et al. 2017, Attention is all you need",
)
class SoftmaxAttention(AttentionLayer):
    """Multi-head scaled dot-product attention (exact, O(n^2) time and memory).

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads H.
        head_dim: Head width d (default ``hidden_dim // num_heads``).
        dropout: Dropout on the attention weights (training only).
        causal: Query i attends to keys ``j <= i`` only.
        init_weights: Initialisation mode of the projections.
        bias: Biases in the q/k/v/out projections.
        use_rope: Rotary position embeddings on queries and keys.
        qk_norm: LayerNorm on each head's queries and keys.
        alibi: Add ALiBi distance biases to the scores.
        masked_queries: ``zero``: masked positions output 0; ``all_keys``: a masked query
            attends to every key with equal weight (the LRA code's rule, see the module
            docstring); not with ``causal``.
    """

    has_queries_keys: ClassVar[bool] = True
    has_scores: ClassVar[bool] = True
    supports_causal: ClassVar[bool] = True

    def __init__(
        self,
        hidden_dim: int = 512,
        num_heads: int = 8,
        head_dim: int | None = None,
        dropout: float = 0.0,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        bias: bool = True,
        use_rope: bool = False,
        qk_norm: bool = False,
        alibi: bool = False,
        masked_queries: Literal["zero", "all_keys"] = "zero",
    ) -> None:
        super().__init__()
        self.check_options(causal=causal, use_rope=use_rope, qk_norm=qk_norm, dropout=dropout)
        if masked_queries not in MASKED_QUERY_RULES:
            raise ValueError(
                f"masked_queries must be one of {', '.join(MASKED_QUERY_RULES)}, "
                f"got {masked_queries!r}"
            )
        if masked_queries == "all_keys" and causal:
            raise ValueError(
                "masked_queries='all_keys' lets a masked query see every key, future ones "
                "included; it cannot be combined with causal=True"
            )
        self.masked_queries = masked_queries
        add_qkv_projections(
            self,
            hidden_dim,
            num_heads,
            head_dim,
            bias=bias,
            qk_norm=qk_norm,
            use_rope=use_rope,
            init_weights=init_weights,
        )
        self.hidden_dim, self.dropout, self.causal, self.alibi = hidden_dim, dropout, causal, alibi

    def attention_bias(
        self, mask: Tensor | None, seq_len: int, device: torch.device, dtype: torch.dtype
    ) -> Tensor | None:
        """The SDPA ``attn_mask`` for this layer's options.

        Returns:
            bool ``(B, 1, 1, N)`` for a key-padding mask alone, bool ``(B|1, 1, N, N)``
            (True = attend) with causal masking, float bias ``(B|1, H, N, N)`` with ALiBi,
            or None when there is nothing to mask or add.
        """
        allowed: Tensor | None = None
        if mask is not None and not self.causal and not self.alibi:
            key_ok = mask[:, None, None, :]  # (B, 1, 1, N)
            return key_ok | ~key_ok.any(dim=-1, keepdim=True)  # no all-masked rows
        if mask is not None:
            allowed = mask[:, None, None, :].expand(-1, 1, seq_len, -1)  # (B, 1, N, N)
        if self.causal:
            tril = torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()
            allowed = tril[None, None] if allowed is None else allowed & tril  # (B|1, 1, N, N)
        if allowed is not None:
            allowed = allowed | ~allowed.any(dim=-1, keepdim=True)  # no all-masked rows
        if not self.alibi:
            return allowed
        bias = alibi_bias(self.num_heads, seq_len, device=device)[None]  # (1, H, N, N)
        if allowed is not None:
            bias = bias.masked_fill(~allowed, float("-inf"))  # (B|1, H, N, N)
        return bias.to(dtype)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend; x (B, N, D), mask (B, N) True on real tokens -> (B, N, D).

        With ``return_attention`` the weights ``(B, H, N, N)`` are formed explicitly (the
        slow path; rows of masked queries are zero) and returned with the output.
        """
        mask = check_input(x, mask, self.hidden_dim)
        dropout = self.dropout if self.training else 0.0
        if mask is not None and not return_attention:
            if self.uses_segments(x.device, matmul_dtype(x)):
                return self._varlen_forward(x, mask, dropout)
        q, k, v = project_qkv(self, x)  # (B, H, N, d) each
        seq_len = x.shape[1]
        fast_causal = self.causal and mask is None and not self.alibi
        attn_mask = None if fast_causal else self.attention_bias(mask, seq_len, x.device, q.dtype)
        weights = None
        if return_attention:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, N, N)
            if attn_mask is None and fast_causal:
                attn_mask = self.attention_bias(None, seq_len, x.device, q.dtype)
            if attn_mask is not None and attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            elif attn_mask is not None:
                scores = scores + attn_mask
            weights = scores.softmax(dim=-1)  # (B, H, N, N)
            out = nn.functional.dropout(weights, dropout, self.training) @ v  # (B, H, N, d)
            if mask is not None:
                fill = 1.0 / seq_len if self.masked_queries == "all_keys" else 0.0
                weights = weights.masked_fill(~mask[:, None, :, None], fill)  # (B, H, N, N)
        else:
            out = fused_sdpa(q, k, v, attn_mask, dropout, fast_causal)  # (B, H, N, d)
        out = self._project_out(merge_heads(out), mask, v, token_dim=2)  # (B, N, D)
        return (out, weights) if return_attention else out  # type: ignore[return-value]

    def _project_out(
        self, merged: Tensor, mask: Tensor | None, v: Tensor, token_dim: int
    ) -> Tensor:
        """Output projection of the merged heads, masked positions set by ``masked_queries``.

        Args:
            merged: (B, N, H*d) attention outputs in token order.
            mask: (B, N) True on real tokens, or None.
            v: the values, (B, H, N, d) (``token_dim=2``) or (B, N, H, d) (``token_dim=1``);
                read only under ``all_keys``.
            token_dim: Their token dimension.

        Returns:
            (B, N, D): 0 at masked positions (``zero``), or ``W_o`` of the mean of all N values
            (``all_keys``).
        """
        if mask is None or self.masked_queries == "zero":
            return zero_masked(self.out_proj(merged), mask)
        mean_v = v.mean(dim=token_dim).reshape(v.shape[0], 1, -1)  # (B, 1, H*d)
        return self.out_proj(torch.where(mask[..., None], merged, mean_v.to(merged.dtype)))

    def uses_segments(self, device: torch.device, dtype: torch.dtype) -> bool:
        """Whether a key-padding mask takes the variable-length flash kernel here.

        Not with causal masking or ALiBi (their scores depend on positions the row sort would
        move), and only where :func:`~.key_padding.varlen_available` says the kernel runs.
        """
        if self.causal or self.alibi:
            return False
        return key_padding.varlen_available(device, dtype, self.head_dim)

    def _varlen_forward(self, x: Tensor, mask: Tensor, dropout: float) -> Tensor:
        """Key-padding attention on the variable-length flash kernel; x (B, N, D) -> (B, N, D).

        Tokens are sorted so that each row's real tokens come first, attended within their
        row's real segment, and sorted back (exact; see :mod:`~.key_padding`). Without RoPE
        the input rows are sorted before the projections (one gather instead of three).
        """
        batch, seq_len, _ = x.shape
        order = key_padding.PrefixOrder(mask)
        if self.use_rope:
            q, k, v = (order.sort(t.transpose(1, 2)) for t in project_qkv(self, x))  # (B, N, H, d)
        else:
            q, k, v = (t.transpose(1, 2) for t in project_qkv(self, order.sort(x)))  # (B, N, H, d)
        out = key_padding.key_padding_attention(
            q, k, v, order.cu, order.max_len, dropout, order.seqused_k
        )  # (B, N, H, d)
        merged = order.unsort(out.reshape(batch, seq_len, -1))  # (B, N, H*d)
        return self._project_out(merged, mask, v, token_dim=1)  # (B, N, D); means are order-free


MASKED_QUERY_RULES = ("zero", "all_keys")
"""Values of ``masked_queries``: what a query at a masked position outputs."""

SMALL_HEAD_MAX_DIM: int | None = None
"""Head widths up to this take :func:`~spectrans.kernels.small_head_attention.small_head_attention`
on CUDA when there is no mask and no causal masking (at most 16). None: never. With attention
dropout the kernels are slower than fused SDPA on an H200 (one call at the Pathfinder-32 shape
13.1 ms against 7.4, results/profile/triton_kernels.md); ``python -m experiments.probe_paths
--tables sdpa`` times both."""


def fused_sdpa(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, dropout: float, is_causal: bool
) -> Tensor:
    """SDPA with q, k, v (B, H, N, d) zero-padded to a width that fused kernels take.

    The head width is padded to a multiple of 8 with the scale ``1/sqrt(d)`` of the true
    width (exact, see the module docstring) and the output is cropped back to ``d``. Narrow
    unmasked heads take the small-head kernels where :data:`SMALL_HEAD_MAX_DIM` allows.
    """
    d = q.shape[-1]
    limit = SMALL_HEAD_MAX_DIM
    if limit is not None and d <= min(limit, small_head.PADDED_HEAD_DIM):
        if q.is_cuda and small_head.HAS_TRITON and attn_mask is None and not is_causal:
            return small_head.small_head_attention(q, k, v, dropout)  # (B, H, N, d)
    q, k, v = pad_head_width(q, k, v)  # (B, H, N, d')
    out = nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout, is_causal=is_causal, scale=d**-0.5
    )  # (B, H, N, d')
    return out[..., :d]
