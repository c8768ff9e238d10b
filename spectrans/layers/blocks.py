"""Pre-norm residual block around any token mixer.

    h   = x + drop(mixer(LN_1(x), mask))
    out = h + drop(FFN(LN_2(h)))

LayerNorm and the feed-forward act per position, so the block is exactly as causal and as
mask-exact as its mixer. With ``gradient_checkpointing`` the block is recomputed in the
backward pass (``torch.utils.checkpoint``, ``use_reentrant=False``, RNG state preserved so
dropout masks repeat, buffers such as random-feature projections replayed as they were in the
first pass): outputs and gradients equal those without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from spectrans.layers.dropout import Dropout
from spectrans.layers.feedforward import FeedForward


class PreNormBlock(nn.Module):
    """One encoder block.

    Args:
        mixer: Token mixer meeting the contract of
            :class:`spectrans.layers.attention.base.AttentionLayer`.
        hidden_dim: Model width D.
        ffn_hidden_dim: Feed-forward inner width.
        dropout: Dropout on both residual branches and inside the feed-forward.
        activation: Feed-forward nonlinearity.
        init_weights: Feed-forward initialisation mode.
        gradient_checkpointing: Recompute the block during backward (training only).
    """

    def __init__(
        self,
        mixer: nn.Module,
        hidden_dim: int,
        ffn_hidden_dim: int,
        dropout: float = 0.0,
        activation: str = "gelu",
        init_weights: str = "truncnormal002",
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_dim)
        self.mixer = mixer
        self.norm2 = nn.LayerNorm(hidden_dim)
        self.ffn = FeedForward(hidden_dim, ffn_hidden_dim, dropout, activation, init_weights)
        self.drop = Dropout(dropout)
        self.gradient_checkpointing = gradient_checkpointing

    def _forward(self, x: Tensor, mask: Tensor | None, mixer_kwargs: dict[str, Any]) -> Tensor:
        mixed = self.mixer(self.norm1(x), mask, **mixer_kwargs)  # (B, N, D)
        if isinstance(mixed, tuple):
            mixed = mixed[0]
        h = x + self.drop(mixed)  # (B, N, D)
        return h + self.drop(self.ffn(self.norm2(h)))  # (B, N, D)

    def forward(self, x: Tensor, mask: Tensor | None = None, **mixer_kwargs: Any) -> Tensor:
        """x: (B, N, D), mask: (B, N) bool (True = real) -> (B, N, D).

        Extra keyword arguments go to the mixer (e.g. ``token_specs`` of a pattern layer).
        """
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(
                self._forward,
                x,
                mask,
                mixer_kwargs,
                use_reentrant=False,
                context_fn=self._replay_buffers_context(),
            )
        return self._forward(x, mask, mixer_kwargs)

    def _replay_buffers_context(self) -> Callable[[], tuple[Any, Any]]:
        """Contexts for ``checkpoint``: the recompute sees the buffers of the first pass.

        Buffers a mixer changes while running (random-feature redraw counters and
        projections) are restored to their values before the forward pass for the recompute
        and set back afterwards, so the recompute redraws nothing and the gradients are
        those of the forward pass.
        """
        before = {name: buf.detach().clone() for name, buf in self.named_buffers()}

        @contextmanager
        def recompute() -> Iterator[None]:
            buffers = dict(self.named_buffers())
            after = {name: buf.detach().clone() for name, buf in buffers.items()}
            with torch.no_grad():
                for name, value in before.items():
                    buffers[name].copy_(value)
            try:
                yield
            finally:
                with torch.no_grad():
                    for name, value in after.items():
                        buffers[name].copy_(value)

        return lambda: (nullcontext(), recompute())
