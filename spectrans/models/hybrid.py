"""Hybrid encoders: a token mixer interleaved with softmax attention.

:class:`HybridEncoder` is the generic encoder (:class:`~spectrans.models.encoder.Encoder`)
whose block ``i`` uses softmax attention when ``(i + 1) % attention_every == 0`` and the
configured mixer otherwise (the original spectrans ``HybridTransformer`` with its
``even_spectral`` pattern is ``attention_every=2``). :class:`AlternatingTransformer` alternates
two arbitrary registry mixers, block ``i`` taking ``layer1`` for even ``i`` and ``layer2`` for
odd ``i``. Both keep the encoder's contract: masks, CLS token, positions, checkpointing.

Examples:
    >>> import torch
    >>> enc = HybridEncoder({"name": "fnet"}, vocab_size=10, hidden_dim=16, num_layers=4,
    ...                     attention_every=2, attention_heads=2)
    >>> [type(b.mixer).__name__ for b in enc.blocks][:2]
    ['FourierMixing', 'SoftmaxAttention']
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from spectrans.config.core import TokenMixerConfig
from spectrans.config.models import HybridModelConfig
from spectrans.layers.positional import apply_positional_to_mixer
from spectrans.models.encoder import Encoder, resolve_mixer_config, seed_stack_kwargs
from spectrans.models.heads import ClassifierHead, pool


class _PerBlockMixers(Encoder):
    """Encoder whose block ``i`` takes mixer config ``self.config_for(i)``."""

    def mixer_configs(self) -> list[TokenMixerConfig]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _resolve(self, config: Mapping[str, Any]) -> TokenMixerConfig:
        """A block's mixer config from its fields, the rest filled from the model.

        Width, sequence size and positions come from the model; ``dropout`` and ``causal``
        default to those of the model's own mixer.
        """
        defaults = {"dropout": self.mixer_config.dropout, "causal": self.mixer_config.causal}
        resolved = resolve_mixer_config(
            {**defaults, **config},
            hidden_dim=self.hidden_dim,
            max_sequence_length=getattr(
                self.mixer_config, "max_sequence_length", self.max_sequence_length
            ),
        )
        return apply_positional_to_mixer(self.positional_encoding_type, resolved)


class HybridEncoder(_PerBlockMixers):
    """The generic encoder with softmax attention every ``attention_every`` blocks.

    Args:
        mixer_config: The token mixer of the other blocks (any registry entry).
        attention_every: Period of the softmax blocks (>= 1).
        attention_heads: Heads of the softmax blocks.
        **kwargs: :class:`~spectrans.models.encoder.Encoder` arguments.
    """

    def __init__(
        self,
        mixer_config: TokenMixerConfig | Mapping[str, Any],
        *,
        attention_every: int = 2,
        attention_heads: int = 4,
        **kwargs: Any,
    ) -> None:
        if attention_every < 1:
            raise ValueError(f"attention_every must be >= 1, got {attention_every}")
        self.attention_every = attention_every
        self.attention_heads = attention_heads
        super().__init__(mixer_config, **kwargs)

    def is_attention_block(self, index: int) -> bool:
        """Whether block ``index`` (0-based) is a softmax block."""
        return (index + 1) % self.attention_every == 0

    def mixer_configs(self) -> list[TokenMixerConfig]:
        """The mixer config of every block."""
        softmax = self._resolve({"name": "softmax", "num_heads": self.attention_heads})
        return [
            softmax if self.is_attention_block(i) else self.mixer_config
            for i in range(self.num_layers)
        ]

    @classmethod
    def from_config(  # type: ignore[override]
        cls,
        config: HybridModelConfig,
        mixer_config: TokenMixerConfig | Mapping[str, Any],
        **kwargs: Any,
    ) -> HybridEncoder:
        """Build from a :class:`HybridModelConfig` (other arguments as ``Encoder.from_config``).

        ``Encoder.from_config`` maps the shared fields; it is called with this class, its two
        hybrid options bound, in place of ``cls``.
        """
        build = functools.partial(
            cls, attention_every=config.attention_every, attention_heads=config.attention_heads
        )
        return Encoder.from_config.__func__(build, config, mixer_config, **kwargs)  # type: ignore[attr-defined]


class AlternatingTransformer(_PerBlockMixers):
    """Blocks alternate two registry mixers: ``layer1`` at even, ``layer2`` at odd positions.

    Args:
        vocab_size: Token vocabulary; None means ``inputs_embeds`` are passed.
        hidden_dim: Model width D.
        num_layers: Number of blocks.
        max_sequence_length: Most tokens accepted (where a limit exists).
        layer1_type: Registry name of the even blocks' mixer (``fourier`` means ``fnet``).
        layer2_type: Registry name of the odd blocks' mixer (``attention`` means ``softmax``).
        layer1_config: Extra fields of the first mixer's config.
        layer2_config: Extra fields of the second mixer's config.
        num_classes: Classes of the head; None returns hidden states.
        use_positional_encoding: False means no positional encoding.
        positional_encoding_type: Positional encoding type.
        dropout: Dropout probability.
        ffn_hidden_dim: Feed-forward width (None: ``4 * hidden_dim``).
        gradient_checkpointing: Checkpoint every block.
        pooling: ``mean`` | ``cls`` | ``last`` (with ``num_classes``).
    """

    ALIASES = {"fourier": "fnet", "attention": "softmax", "gfnet": "global_filter"}

    def __init__(
        self,
        vocab_size: int | None = None,
        hidden_dim: int = 768,
        num_layers: int = 12,
        max_sequence_length: int = 512,
        layer1_type: str = "fourier",
        layer2_type: str = "attention",
        layer1_config: dict[str, Any] | None = None,
        layer2_config: dict[str, Any] | None = None,
        num_classes: int | None = None,
        use_positional_encoding: bool = True,
        positional_encoding_type: str = "sinusoidal",
        dropout: float = 0.1,
        ffn_hidden_dim: int | None = None,
        gradient_checkpointing: bool = False,
        *,
        pooling: str = "mean",
    ) -> None:
        self.layer_sources = [
            {"name": self.ALIASES.get(t, t), **(c or {})}
            for t, c in ((layer1_type, layer1_config), (layer2_type, layer2_config))
        ]
        super().__init__(
            self.layer_sources[0],
            **seed_stack_kwargs(locals()),
            use_cls_token=num_classes is not None and pooling == "cls",
        )
        self.pooling = pooling
        self.head = (
            ClassifierHead(hidden_dim, hidden_dim, num_classes, self.init_mode)
            if num_classes is not None
            else None
        )

    def mixer_configs(self) -> list[TokenMixerConfig]:
        """Even blocks: the first mixer; odd blocks: the second."""
        second = self._resolve({"dropout": self.dropout, **self.layer_sources[1]})
        return [self.mixer_config if i % 2 == 0 else second for i in range(self.num_layers)]

    def forward(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, N, D), or logits (B, C) when built with ``num_classes``."""
        h, mask = self.hidden_states(input_ids, inputs_embeds, attention_mask)
        return h if self.head is None else self.head(pool(h, mask, self.pooling))
