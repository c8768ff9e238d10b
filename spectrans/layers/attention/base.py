"""The contract every token mixer meets (attention and spectral mixing layers).

``forward(x, mask=None, return_attention=False)``:

- ``x``: ``(B, N, D)`` float tensor.
- ``mask``: ``(B, N)`` bool tensor, True on real tokens, False on padding; None means all
  real. Masking is exact: changing ``x`` at masked positions changes no output at unmasked
  positions. Outputs *at* masked positions are zero.
- returns ``(B, N, D)``, or ``(out, weights)`` when ``return_attention`` is True, where
  ``weights`` is ``(B, H, N, N)`` for layers that form scores and None for the others.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from spectrans.config.core import TokenMixerConfig


class AttentionLayer(nn.Module):
    """Base class of every registered token mixer.

    Class attributes tell models which options make sense for a layer:

    Attributes:
        has_queries_keys: The layer forms per-head queries and keys (RoPE and QK-norm apply).
        has_scores: The layer forms an ``N x N`` score matrix (ALiBi and attention patterns
            apply, ``return_attention`` returns weights).
        supports_causal: The layer implements ``causal=True`` exactly.
    """

    has_queries_keys: ClassVar[bool] = False
    has_scores: ClassVar[bool] = False
    supports_causal: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: TokenMixerConfig) -> AttentionLayer:
        """Build the layer from its pydantic config (``cls(**config.layer_kwargs())``)."""
        return cls(**config.layer_kwargs())

    def _refuse(self, option: str, value: Any, why: str) -> None:
        """Raise the one-sentence error for an option this layer cannot honour."""
        raise ValueError(f"{type(self).__name__} does not support {option}={value!r}: {why}")

    def check_options(
        self,
        *,
        causal: bool = False,
        use_rope: bool = False,
        qk_norm: bool = False,
        dropout: float | None = None,
    ) -> None:
        """Refuse options the class attributes say the layer cannot honour.

        ``dropout``, when given, must lie in [0, 1).
        """
        if dropout is not None and not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if causal and not self.supports_causal:
            self._refuse("causal", causal, "every output depends on the whole sequence")
        if use_rope and not self.has_queries_keys:
            self._refuse("use_rope", use_rope, "it has no queries and keys to rotate")
        if qk_norm and not self.has_queries_keys:
            self._refuse("qk_norm", qk_norm, "it has no queries and keys to normalise")


def _described(t: Tensor) -> str:
    return f"shape {tuple(t.shape)} and dtype {str(t.dtype).removeprefix('torch.')}"


def check_input(x: Tensor, mask: Tensor | None, hidden_dim: int | None = None) -> Tensor | None:
    """The one input check of every token mixer; returns ``mask`` (bool) or None.

    ``x`` must be a floating-point ``(B, N, D)`` tensor with ``B, N >= 1`` and, when
    ``hidden_dim`` is given, ``D == hidden_dim``. ``mask`` must be a ``(B, N)`` boolean tensor,
    True on real tokens. A float mask is refused rather than guessed at: an additive
    ``0 / -inf`` mask read as boolean would keep the padding and drop the real tokens.

    Raises:
        ValueError: one sentence naming the shape and dtype received and the fix.
    """
    if not isinstance(x, Tensor) or x.dim() != 3:
        got = _described(x) if isinstance(x, Tensor) else f"a {type(x).__name__}"
        raise ValueError(f"x must be a (batch, seq_len, hidden_dim) tensor, got {got}")
    if not x.is_floating_point():
        raise ValueError(
            f"x must be a floating-point tensor, got {_described(x)}; embed token ids first "
            "(or cast with x.float())"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x is empty ({_described(x)}); batch and seq_len must both be at least 1")
    if hidden_dim is not None and x.shape[2] != hidden_dim:
        raise ValueError(
            f"x has hidden size {x.shape[2]} ({_described(x)}) but the layer was built with "
            f"hidden_dim={hidden_dim}; project x to {hidden_dim} or build the layer for "
            f"{x.shape[2]}"
        )
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = _described(mask) if isinstance(mask, Tensor) else f"a {type(mask).__name__}"
        raise ValueError(
            f"mask must be a boolean (batch, seq_len) tensor with True on real tokens, got {got}; "
            "for an additive 0/-inf mask pass mask=(additive == 0), for 1/0 pass mask.bool()"
        )
    if mask.shape != x.shape[:2]:
        raise ValueError(
            f"mask has {_described(mask)} but x's (batch, seq_len) is {tuple(x.shape[:2])}"
        )
    return mask


FUSED_HEAD_MULTIPLE = 8
"""Fused attention kernels (flash, memory-efficient, cuDNN) take head widths that are multiples
of this."""


def fused_head_width(head_dim: int) -> int:
    """``head_dim`` rounded up to :data:`FUSED_HEAD_MULTIPLE`."""
    return head_dim + (-head_dim % FUSED_HEAD_MULTIPLE)


def pad_head_width(*tensors: Tensor) -> list[Tensor]:
    """Zero-pad the last (head) dim of each tensor to :func:`fused_head_width`.

    Exact for attention computed with the scale ``1/sqrt(d)`` of the true width ``d``: the
    zero columns add 0 to every score ``q_i . k_j``, and the output's padded columns (weights
    times zero values) are cropped off by the caller. No copy when the width already fits.
    """
    pad = fused_head_width(tensors[0].shape[-1]) - tensors[0].shape[-1]
    return [nn.functional.pad(t, (0, pad)) if pad else t for t in tensors]


def zero_masked(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the positions where ``mask`` is False. x: (B, N, ...), mask: (B, N)."""
    if mask is None:
        return x
    shape = mask.shape + (1,) * (x.dim() - 2)
    return x * mask.reshape(shape).to(x.dtype)


def init_linear(linear: nn.Linear, mode: str, *, zero: bool = False) -> None:
    """Initialise one linear layer by an ``InitWeightsMode``.

    Args:
        linear: The layer.
        mode: ``truncnormal002`` | ``truncnormal`` | ``xavier`` | ``torch`` |
            ``truncnormal002-identity`` (:data:`spectrans.config.InitWeightsMode`).
        zero: Start the weight at zero (the output projection under ``*-identity``).
    """
    if mode == "torch":
        return
    if zero:
        nn.init.zeros_(linear.weight)
    elif mode in ("truncnormal002", "truncnormal002-identity"):
        nn.init.trunc_normal_(linear.weight, std=0.02, a=-0.04, b=0.04)
    elif mode == "truncnormal":
        std = 1.0 / math.sqrt(linear.in_features)
        nn.init.trunc_normal_(linear.weight, std=std, a=-2 * std, b=2 * std)
    elif mode == "xavier":
        nn.init.xavier_uniform_(linear.weight)  # U(-a, a), a = sqrt(6 / (fan_in + fan_out))
    else:
        raise ValueError(f"unknown init_weights mode '{mode}'")
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
