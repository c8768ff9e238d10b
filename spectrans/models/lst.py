"""Linear Spectral Transform (LST) models: transformer, encoder, causal decoder.

Every block is pre-norm with an LST attention layer (registry ``lst``) as token mixer:

    h = x + LST(LN(x), mask),  LST(X) = W_o T^{-1}(Lambda ⊙ T(X W_v))  per head,

with T the DCT, DST, Hadamard or a mix per head, then ``h + FFN(LN(h))``. ``LSTDecoder`` builds
its mixers with ``causal=True`` (the layer must honour it exactly or refuse), uses only
per-position encodings and no pooling, so the logits at t depend on tokens ``<= t`` only.

Examples:
    >>> import torch
    >>> model = LSTTransformer(hidden_dim=32, num_layers=1, num_heads=4, transform_type="dct",
    ...                        max_sequence_length=64)
    >>> model(inputs_embeds=torch.randn(2, 10, 32)).shape
    torch.Size([2, 10, 32])
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from spectrans.arguments import pick_args
from spectrans.config.models import LSTModelConfig
from spectrans.layers.attention.base import init_linear
from spectrans.models.encoder import Encoder, seed_stack_kwargs
from spectrans.models.heads import ClassifierHead, pool

LST_STACK_ARGS = (
    "hidden_dim",
    "num_layers",
    "max_sequence_length",
    "transform_type",
    "use_conv_bias",
    "ffn_hidden_dim",
    "dropout",
    "use_positional_encoding",
    "positional_encoding_type",
    "gradient_checkpointing",
    "num_heads",
    "init_weights",
)
"""Constructor arguments every LST model takes and passes on to :class:`LSTEncoder` unchanged
(also the :class:`LSTModelConfig` fields :func:`lst_kwargs` reads)."""


class LSTEncoder(Encoder):
    """Encoder-only LST model; returns hidden states (B, N, D).

    Args:
        vocab_size: Token vocabulary; None means ``inputs_embeds`` are passed.
        hidden_dim: Model width D.
        num_layers: Number of blocks.
        max_sequence_length: Most tokens accepted (where a limit exists).
        transform_type: ``dct`` | ``dst`` | ``hadamard`` | ``wavelet`` | ``mixed``.
        use_conv_bias: Bias of the LST q/k/v/out projections (the layer's ``use_bias``). The
            name is the spectrans API's; LST has no convolution, its projections are its
            only biased maps.
        ffn_hidden_dim: Feed-forward width (None: ``4 * hidden_dim``).
        dropout: Dropout probability.
        use_positional_encoding: False means no positional encoding.
        positional_encoding_type: ``sinusoidal`` | ``learned`` | ``rotary`` | ``alibi`` | ``none``.
        gradient_checkpointing: Checkpoint every block.
        num_heads: LST heads.
        causal: Build causal mixers.
        use_cls_token: Prepend a CLS token.
        input_type: ``tokens`` | ``values``.
        init_weights: Init mode of the model-owned layers.
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        hidden_dim: int = 512,
        num_layers: int = 6,
        max_sequence_length: int = 1024,
        transform_type: str = "dct",
        use_conv_bias: bool = True,
        ffn_hidden_dim: int | None = None,
        dropout: float = 0.0,
        use_positional_encoding: bool = True,
        positional_encoding_type: str = "sinusoidal",
        gradient_checkpointing: bool = False,
        *,
        num_heads: int = 8,
        causal: bool = False,
        use_cls_token: bool = False,
        input_type: str = "tokens",
        init_weights: str = "truncnormal002",
    ) -> None:
        mixer = {
            "name": "lst",
            "hidden_dim": hidden_dim,
            "num_heads": num_heads,
            "transform_type": transform_type,
            "use_bias": use_conv_bias,
            "dropout": dropout,
            "causal": causal,
        }
        super().__init__(
            mixer,
            **seed_stack_kwargs(locals()),
            use_cls_token=use_cls_token,
            input_type=input_type,
            init_weights=init_weights,
        )
        self.transform_type = transform_type
        self.causal = causal

    @classmethod
    def from_config(cls, config: LSTModelConfig) -> LSTEncoder:  # type: ignore[override]
        """Build from an :class:`LSTModelConfig` (``vocab_size`` included)."""
        return cls(vocab_size=config.vocab_size, **lst_kwargs(config))


def lst_kwargs(config: LSTModelConfig) -> dict[str, Any]:
    """Constructor kwargs shared by the LST models (:data:`LST_STACK_ARGS`), from a config."""
    return {name: getattr(config, name) for name in LST_STACK_ARGS}


class LSTTransformer(LSTEncoder):
    """LST transformer: hidden states (B, N, D), or logits (B, C) with ``num_classes``.

    Args:
        vocab_size: Token vocabulary; None means ``inputs_embeds`` are passed.
        hidden_dim: Model width D.
        num_layers: Number of blocks.
        max_sequence_length: Most tokens accepted (where a limit exists).
        transform_type: ``dct`` | ``dst`` | ``hadamard`` | ``wavelet`` | ``mixed``.
        use_conv_bias: Bias of the LST q/k/v/out projections (the layer's ``use_bias``). The
            name is the spectrans API's; LST has no convolution, its projections are its
            only biased maps.
        num_classes: Number of classes; None means no head.
        ffn_hidden_dim: Feed-forward width (None: ``4 * hidden_dim``).
        dropout: Dropout probability.
        use_positional_encoding: False means no positional encoding.
        positional_encoding_type: Positional encoding type.
        gradient_checkpointing: Checkpoint every block.
        num_heads: LST heads.
        pooling: ``mean`` | ``cls`` | ``last`` (used with ``num_classes``).
        head_hidden_dim: Head width (None: ``hidden_dim``).
        input_type: ``tokens`` | ``values``.
        init_weights: Init mode of the model-owned layers.
        head_init_weights: Init mode of the classifier head (None: ``init_weights``).
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        hidden_dim: int = 512,
        num_layers: int = 6,
        max_sequence_length: int = 1024,
        transform_type: str = "dct",
        use_conv_bias: bool = True,
        num_classes: int | None = None,
        ffn_hidden_dim: int | None = None,
        dropout: float = 0.0,
        use_positional_encoding: bool = True,
        positional_encoding_type: str = "sinusoidal",
        gradient_checkpointing: bool = False,
        *,
        num_heads: int = 8,
        pooling: str = "mean",
        head_hidden_dim: int | None = None,
        input_type: str = "tokens",
        init_weights: str = "truncnormal002",
        head_init_weights: str | None = None,
    ) -> None:
        super().__init__(
            vocab_size,
            **pick_args(locals(), LST_STACK_ARGS),
            use_cls_token=num_classes is not None and pooling == "cls",
            input_type=input_type,
        )
        self.num_classes = num_classes
        self.pooling = pooling
        head_mode = head_init_weights or init_weights
        self.head = (
            ClassifierHead(hidden_dim, head_hidden_dim or hidden_dim, num_classes, head_mode)
            if num_classes is not None
            else None
        )

    @classmethod
    def from_config(cls, config: LSTModelConfig) -> LSTTransformer:  # type: ignore[override]
        """Build from an :class:`LSTModelConfig` (``vocab_size``, ``num_classes`` included)."""
        return cls(
            vocab_size=config.vocab_size,
            num_classes=config.num_classes,
            pooling=config.pooling,
            head_hidden_dim=config.head_hidden_dim,
            head_init_weights=config.head_init_mode,
            **lst_kwargs(config),
        )  # type: ignore[arg-type]

    def forward(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
        input_values: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, N, D), or logits (B, C) when built with ``num_classes``."""
        if self.head is None:
            return super().forward(input_ids, inputs_embeds, attention_mask, input_values)
        features = self.features(input_ids, inputs_embeds, attention_mask, input_values)
        return self.head(features)  # (B, C)

    def features(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
        input_values: Tensor | None = None,
    ) -> Tensor:
        """The pooled features the head reads, (B, D)."""
        h, mask = self.hidden_states(input_ids, inputs_embeds, attention_mask, input_values)
        return pool(h, mask, self.pooling)  # (B, D)


class LSTDecoder(LSTEncoder):
    """LST decoder: language-model logits (B, N, vocab); truly causal when ``causal=True``.

    Args:
        vocab_size: Vocabulary (embedding rows and logits).
        hidden_dim: Model width D.
        num_layers: Number of blocks.
        max_sequence_length: Most tokens accepted (where a limit exists).
        transform_type: ``dct`` | ``dst`` | ``hadamard`` | ``wavelet`` | ``mixed``.
        causal: Build causal mixers (refused by a transform that cannot be causal).
        use_conv_bias: Bias of the LST q/k/v/out projections (the layer's ``use_bias``). The
            name is the spectrans API's; LST has no convolution, its projections are its
            only biased maps.
        ffn_hidden_dim: Feed-forward width (None: ``4 * hidden_dim``).
        dropout: Dropout probability.
        use_positional_encoding: False means no positional encoding.
        positional_encoding_type: Positional encoding type.
        gradient_checkpointing: Checkpoint every block.
        num_heads: LST heads.
        init_weights: Init mode of the model-owned layers.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_dim: int = 512,
        num_layers: int = 12,
        max_sequence_length: int = 2048,
        transform_type: str = "dst",
        causal: bool = True,
        use_conv_bias: bool = True,
        ffn_hidden_dim: int | None = None,
        dropout: float = 0.0,
        use_positional_encoding: bool = True,
        positional_encoding_type: str = "sinusoidal",
        gradient_checkpointing: bool = False,
        *,
        num_heads: int = 8,
        init_weights: str = "truncnormal002",
    ) -> None:
        super().__init__(vocab_size, **pick_args(locals(), LST_STACK_ARGS), causal=causal)
        self.lm_head = nn.Linear(hidden_dim, vocab_size)
        init_linear(self.lm_head, init_weights)

    @classmethod
    def from_config(cls, config: LSTModelConfig) -> LSTDecoder:  # type: ignore[override]
        """Build a causal decoder from an :class:`LSTModelConfig` (needs ``vocab_size``)."""
        if config.vocab_size is None:
            raise ValueError("LSTDecoder needs model.vocab_size; set it in the LST config")
        return cls(vocab_size=config.vocab_size, **lst_kwargs(config))  # type: ignore[arg-type]

    def forward(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Logits (B, N, vocab)."""
        h, _ = self.hidden_states(input_ids, inputs_embeds, attention_mask)  # (B, N, D)
        return self.lm_head(h)  # (B, N, V)
