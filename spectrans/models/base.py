"""Backbone shared by every model: embeddings, positions, optional CLS, blocks, final norm.

    h_0 = drop(PE(embed(tokens) or W v + b or inputs_embeds) [with CLS prepended])
    h_l = Block_l(h_{l-1}, mask)        l = 1..L   (pre-norm residual blocks)
    out = LN(h_L)                                     (B, N, D)

The mask ``(B, N)`` (True = real token) reaches every block; a prepended CLS token is always
real. Subclasses assign ``self.blocks = self.build_blocks()`` and then call
``self.init_weights()``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from spectrans.layers.attention.base import init_linear
from spectrans.layers.dropout import Dropout
from spectrans.layers.positional import build_positional_encoding
from spectrans.layers.token_embedding import TokenEmbedding

LENGTH_KEY = "model.max_sequence_length"


class BaseModel(nn.Module):
    """Embeddings, positional encoding, optional CLS token, blocks and final LayerNorm.

    Args:
        vocab_size: Token vocabulary; None means no embedding table (inputs arrive as
            ``inputs_embeds`` or, with ``input_type="values"``, as ``input_values``).
        hidden_dim: Model width D.
        max_sequence_length: Most input tokens (CLS not counted) where a limit exists.
        positional_encoding_type: ``sinusoidal`` | ``learned`` | ``rotary`` | ``alibi`` |
            ``none`` (rotary/alibi are mixer options, see :mod:`spectrans.layers.positional`).
        use_cls_token: Prepend a learned CLS token (position 0, always unmasked).
        dropout: Dropout on the embeddings.
        input_type: ``tokens`` (a
            :class:`~spectrans.layers.token_embedding.TokenEmbedding`) or ``values``
            (``(B, N)`` floats through ``Linear(1, D)``).
        init_weights: ``InitWeightsMode`` of embeddings and linears owned by the model.
        embedding_init_std: Std of the normal init of the token embedding.
        cls_init_std: Std of the normal init of the CLS token (0 gives zeros).
    """

    def __init__(
        self,
        *,
        vocab_size: int | None,
        hidden_dim: int,
        max_sequence_length: int,
        positional_encoding_type: str = "sinusoidal",
        use_cls_token: bool = False,
        dropout: float = 0.0,
        input_type: str = "tokens",
        init_weights: str = "truncnormal002",
        embedding_init_std: float = 0.02,
        cls_init_std: float = 0.02,
    ) -> None:
        super().__init__()
        if input_type not in ("tokens", "values"):
            raise ValueError(f"input_type must be 'tokens' or 'values', got '{input_type}'")
        self.hidden_dim = hidden_dim
        self.max_sequence_length = max_sequence_length
        self.positional_encoding_type = positional_encoding_type
        self.init_mode = init_weights
        self.embedding_init_std, self.cls_init_std = embedding_init_std, cls_init_std
        self.length_limit: int | None = None  # set by subclasses that have a limit
        self.embedding = TokenEmbedding(vocab_size, hidden_dim) if vocab_size else None
        self.value_proj = nn.Linear(1, hidden_dim) if input_type == "values" else None
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_dim)) if use_cls_token else None
        num_cls = 1 if use_cls_token else 0
        self.positional = build_positional_encoding(
            positional_encoding_type, hidden_dim, max_sequence_length + num_cls, LENGTH_KEY
        )
        self.embed_drop = Dropout(dropout)
        self.final_norm = nn.LayerNorm(hidden_dim)
        self.blocks = nn.ModuleList()

    def build_blocks(self) -> nn.ModuleList:
        """Return the stack of blocks (subclasses)."""
        raise NotImplementedError

    def init_weights(self) -> None:
        """Explicit init of what the model owns; mixers initialise themselves.

        Embedding: normal(0, ``embedding_init_std``) (left to PyTorch under ``torch``); CLS:
        normal(0, ``cls_init_std``);
        ``Linear(1, D)``: by ``init_weights``; LayerNorms: weight 1, bias 0.
        """
        if self.embedding is not None and self.init_mode != "torch":
            nn.init.normal_(self.embedding.weight, std=self.embedding_init_std)
        if self.value_proj is not None:
            init_linear(self.value_proj, self.init_mode)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=self.cls_init_std)
        for module in self.modules():
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def check_length(self, seq_len: int) -> None:
        """Refuse a sequence longer than the model's limit, naming the config key."""
        if self.length_limit is not None and seq_len > self.length_limit:
            raise ValueError(
                f"sequence length {seq_len} exceeds the model's limit of "
                f"{self.length_limit} tokens; raise {LENGTH_KEY} to at least "
                f"{seq_len}"
            )

    def embed(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
        input_values: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Inputs -> ``(h, mask)``: h (B, N', D), mask (B, N') bool or None (N' = N + CLS)."""
        given = [t is not None for t in (input_ids, inputs_embeds, input_values)]
        if sum(given) != 1:
            raise ValueError("pass exactly one of input_ids, inputs_embeds, input_values")
        if input_ids is not None:
            if self.embedding is None:
                raise ValueError(
                    "this model has no token embedding (vocab_size=None); pass "
                    "inputs_embeds or build it with vocab_size"
                )
            h = self.embedding(input_ids)  # (B, N, D)
        elif input_values is not None:
            if self.value_proj is None:
                raise ValueError(
                    "this model takes tokens; build it with input_type='values' "
                    "to pass input_values"
                )
            h = self.value_proj(input_values.unsqueeze(-1).to(self.value_proj.weight.dtype))
        else:
            h = inputs_embeds  # (B, N, D)
        self.check_length(h.shape[1])
        mask = None
        if attention_mask is not None:
            if attention_mask.is_floating_point():
                raise ValueError(
                    f"attention_mask must be boolean or 0/1 integers (1 = real token), got dtype "
                    f"{str(attention_mask.dtype).removeprefix('torch.')} and shape "
                    f"{tuple(attention_mask.shape)}; for an additive 0/-inf mask pass "
                    "attention_mask=(additive == 0)"
                )
            mask = attention_mask.to(torch.bool)
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(h.shape[0], 1, -1).to(h.dtype), h], 1)
            if mask is not None:
                ones = torch.ones(mask.shape[0], 1, dtype=torch.bool, device=mask.device)
                mask = torch.cat([ones, mask], 1)  # (B, N + 1)
        return self.embed_drop(self.positional(h)), mask  # (B, N', D)

    def encode(self, h: Tensor, mask: Tensor | None = None, **mixer_kwargs: Any) -> Tensor:
        """Run the blocks and the final norm: (B, N, D) -> (B, N, D)."""
        for block in self.blocks:
            h = block(h, mask, **mixer_kwargs)  # (B, N, D)
        return self.final_norm(h)

    def hidden_states(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
        input_values: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Embed and encode; returns ``(h, mask)`` including the CLS position if any."""
        h, mask = self.embed(input_ids, inputs_embeds, attention_mask, input_values)
        return self.encode(h, mask), mask

    def forward(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
        input_values: Tensor | None = None,
    ) -> Tensor:
        """Final hidden states (B, N', D)."""
        return self.hidden_states(input_ids, inputs_embeds, attention_mask, input_values)[0]
