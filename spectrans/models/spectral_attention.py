"""Spectral attention models for comparison: random Fourier feature and Performer transformers.

Pre-norm encoders (:class:`~spectrans.models.encoder.Encoder`) whose every block's token
mixer is the registry's ``spectral`` (``SpectralAttention``: random Fourier features, ``O(N)``)
or ``performer`` (FAVOR+) layer, with the constructor arguments of the original spectrans
models.

Examples:
    >>> import torch
    >>> model = SpectralAttentionTransformer(vocab_size=20, hidden_dim=32, num_layers=2,
    ...                                      num_heads=4, num_features=16, num_classes=3)
    >>> model(input_ids=torch.randint(0, 20, (2, 9))).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from spectrans.arguments import pick_args
from spectrans.models.encoder import SEED_STACK_ARGS, Encoder, seed_stack_kwargs
from spectrans.models.heads import ClassifierHead, pool

SPECTRAL_STACK_ARGS = (
    *SEED_STACK_ARGS,
    "num_heads",
    "num_features",
    "use_positional_encoding",
    "positional_encoding_type",
)
"""Arguments the spectral-attention models pass on to their parent unchanged."""


class SpectralAttentionEncoder(Encoder):
    """Encoder of random-Fourier-feature attention blocks; returns hidden states (B, N, D).

    Args:
        vocab_size: Token vocabulary; None means ``inputs_embeds`` are passed.
        hidden_dim: Model width D.
        num_layers: Number of blocks.
        max_sequence_length: Most tokens accepted (where a limit exists).
        num_heads: Attention heads.
        num_features: Random features per head; None means the head width.
        kernel_type: ``softmax`` or ``gaussian`` kernel estimated by the features.
        use_orthogonal: Block-orthogonal random projections.
        ffn_hidden_dim: Feed-forward width (None: ``4 * hidden_dim``).
        dropout: Dropout probability (embeddings, residuals, feed-forward, attention).
        use_positional_encoding: False means no positional encoding.
        positional_encoding_type: ``sinusoidal`` | ``learned`` | ``rotary`` | ``none``.
        gradient_checkpointing: Checkpoint every block.
        use_cls_token: Prepend a CLS token.
    """

    mixer_name = "spectral"

    def __init__(
        self,
        vocab_size: int | None = None,
        hidden_dim: int = 512,
        num_layers: int = 6,
        max_sequence_length: int = 1024,
        num_heads: int = 8,
        num_features: int | None = None,
        kernel_type: str = "softmax",
        use_orthogonal: bool = False,
        ffn_hidden_dim: int | None = None,
        dropout: float = 0.0,
        use_positional_encoding: bool = True,
        positional_encoding_type: str = "sinusoidal",
        gradient_checkpointing: bool = False,
        *,
        use_cls_token: bool = False,
    ) -> None:
        mixer: dict[str, Any] = {
            "name": self.mixer_name,
            "num_heads": num_heads,
            "num_features": num_features,
            "use_orthogonal": use_orthogonal,
            "dropout": dropout,
        }
        if self.mixer_name == "spectral":
            mixer["kernel_type"] = kernel_type
        super().__init__(mixer, **seed_stack_kwargs(locals()), use_cls_token=use_cls_token)
        self.num_heads, self.num_features = num_heads, num_features
        self.kernel_type, self.use_orthogonal = kernel_type, use_orthogonal


class SpectralAttentionTransformer(SpectralAttentionEncoder):
    """RFF-attention transformer: hidden states, or logits (B, C) with ``num_classes``.

    Args:
        vocab_size: Token vocabulary; None means ``inputs_embeds`` are passed.
        hidden_dim: Model width D.
        num_layers: Number of blocks.
        max_sequence_length: Most tokens accepted (where a limit exists).
        num_heads: Attention heads.
        num_features: Random features per head; None means the head width.
        kernel_type: ``softmax`` or ``gaussian``.
        use_orthogonal: Block-orthogonal random projections.
        num_classes: Classes of the head; None returns hidden states.
        ffn_hidden_dim: Feed-forward width (None: ``4 * hidden_dim``).
        dropout: Dropout probability.
        use_positional_encoding: False means no positional encoding.
        positional_encoding_type: Positional encoding type.
        gradient_checkpointing: Checkpoint every block.
        pooling: ``mean`` | ``cls`` | ``last`` (with ``num_classes``).
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        hidden_dim: int = 512,
        num_layers: int = 6,
        max_sequence_length: int = 1024,
        num_heads: int = 8,
        num_features: int | None = None,
        kernel_type: str = "softmax",
        use_orthogonal: bool = False,
        num_classes: int | None = None,
        ffn_hidden_dim: int | None = None,
        dropout: float = 0.0,
        use_positional_encoding: bool = True,
        positional_encoding_type: str = "sinusoidal",
        gradient_checkpointing: bool = False,
        *,
        pooling: str = "mean",
    ) -> None:
        super().__init__(
            **pick_args(locals(), SPECTRAL_STACK_ARGS),
            kernel_type=kernel_type,
            use_orthogonal=use_orthogonal,
            use_cls_token=num_classes is not None and pooling == "cls",
        )
        self.num_classes, self.pooling = num_classes, pooling
        self.head = (
            ClassifierHead(hidden_dim, hidden_dim, num_classes, self.init_mode)
            if num_classes is not None
            else None
        )

    def forward(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, N, D), or logits (B, C) when built with ``num_classes``."""
        h, mask = self.hidden_states(input_ids, inputs_embeds, attention_mask)
        return h if self.head is None else self.head(pool(h, mask, self.pooling))


class PerformerTransformer(SpectralAttentionTransformer):
    """Performer (FAVOR+, positive orthogonal random features) transformer.

    Args:
        vocab_size: Token vocabulary; None means ``inputs_embeds`` are passed.
        hidden_dim: Model width D.
        num_layers: Number of blocks.
        max_sequence_length: Most tokens accepted (where a limit exists).
        num_heads: Attention heads.
        num_features: Positive random features per head; None means 256.
        num_classes: Classes of the head; None returns hidden states.
        ffn_hidden_dim: Feed-forward width (None: ``4 * hidden_dim``).
        dropout: Dropout probability.
        use_positional_encoding: False means no positional encoding.
        positional_encoding_type: Positional encoding type.
        gradient_checkpointing: Checkpoint every block.
        pooling: ``mean`` | ``cls`` | ``last`` (with ``num_classes``).
    """

    mixer_name = "performer"

    def __init__(
        self,
        vocab_size: int | None = None,
        hidden_dim: int = 512,
        num_layers: int = 6,
        max_sequence_length: int = 1024,
        num_heads: int = 8,
        num_features: int | None = None,
        num_classes: int | None = None,
        ffn_hidden_dim: int | None = None,
        dropout: float = 0.0,
        use_positional_encoding: bool = True,
        positional_encoding_type: str = "sinusoidal",
        gradient_checkpointing: bool = False,
        *,
        pooling: str = "mean",
    ) -> None:
        super().__init__(
            **pick_args(locals(), SPECTRAL_STACK_ARGS),
            kernel_type="softmax",
            use_orthogonal=True,
            num_classes=num_classes,
            pooling=pooling,
        )


__all__ = ["PerformerTransformer", "SpectralAttentionEncoder", "SpectralAttentionTransformer"]
