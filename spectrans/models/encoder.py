"""Generic pre-norm encoder whose token mixer is any registry entry.

Each of the ``num_layers`` blocks gets its own mixer built by
:func:`spectrans.registry.build_layer` from one mixer config, with ``hidden_dim`` (and
``max_sequence_length``, where the mixer has it) taken from the model, and rotary/alibi
positional encodings turned into the mixer options ``use_rope``/``alibi``.

Examples:
    >>> import torch
    >>> from spectrans.models.encoder import Encoder
    >>> enc = Encoder({"name": "fnet"}, vocab_size=10, hidden_dim=16, num_layers=2,
    ...               max_sequence_length=32)
    >>> enc(torch.randint(0, 10, (2, 5))).shape
    torch.Size([2, 5, 16])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from spectrans.arguments import pick_args
from spectrans.config.core import TokenMixerConfig, with_fields
from spectrans.config.models import EncoderModelConfig
from spectrans.config.patterns import AttentionPattern
from spectrans.layers.blocks import PreNormBlock
from spectrans.layers.patterns import PatternAttention
from spectrans.layers.positional import apply_positional_to_mixer
from spectrans.models.base import BaseModel
from spectrans.registry import build_layer, get_entry, names

SEED_STACK_ARGS = (
    "vocab_size",
    "hidden_dim",
    "num_layers",
    "max_sequence_length",
    "ffn_hidden_dim",
    "dropout",
    "gradient_checkpointing",
)
""":class:`Encoder` arguments that the models with the original spectrans signatures (LST,
spectral attention, alternating) pass on under the same names."""


def seed_stack_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`Encoder` kwargs from the ``locals()`` of a constructor with the spectrans signature.

    :data:`SEED_STACK_ARGS` pass unchanged; ``use_positional_encoding=False`` becomes
    ``positional_encoding_type="none"``.
    """
    kwargs = pick_args(values, SEED_STACK_ARGS)
    use_positions = values["use_positional_encoding"]
    kwargs["positional_encoding_type"] = (
        values["positional_encoding_type"] if use_positions else "none"
    )
    return kwargs


def resolve_mixer_config(
    mixer_config: TokenMixerConfig | Mapping[str, Any], **overrides: Any
) -> TokenMixerConfig:
    """The mixer's config object with ``overrides`` set on the fields its class has.

    ``max_sequence_length`` therefore reaches only mixers that have it. A config object is
    changed by its own class (:func:`~spectrans.config.core.with_fields`); a mapping, the
    library's convenience form, is validated once, overrides included, into the registered
    class its ``name`` selects.

    Raises:
        KeyError: a mapping without ``name`` or with an unknown one.
        pydantic.ValidationError: the overridden config is invalid (e.g. ``hidden_dim`` not
            divisible by ``num_heads``).
    """
    if isinstance(mixer_config, TokenMixerConfig):
        return with_fields(mixer_config, **overrides)
    if "name" not in mixer_config:
        raise KeyError(f"the token mixer config needs a 'name'; choose one of {names()}")
    config_class = get_entry(str(mixer_config["name"])).config_class
    known = {key: value for key, value in overrides.items() if key in config_class.model_fields}
    return config_class.model_validate({**mixer_config, **known})


def has_attention_weights(mixer_config: TokenMixerConfig) -> bool:
    """Whether the mixer forms attention weights (its layer class has ``has_scores``)."""
    return bool(getattr(get_entry(mixer_config.name).layer_class(), "has_scores", False))


class Encoder(BaseModel):
    """Embeddings + positions + ``num_layers`` pre-norm blocks of one mixer type + final LN.

    Args:
        mixer_config: Config (or dict with ``name``) of the token mixer of every block.
        vocab_size: Token vocabulary (None: no embedding table).
        hidden_dim: Model width D (copied into the mixer config).
        num_layers: Number of blocks.
        max_sequence_length: Most input tokens (CLS not counted) under learned positions;
            copied, plus the CLS token, into the mixer config where it has
            ``max_sequence_length`` (spectral mixers resample their filters to any length).
        ffn_hidden_dim: Feed-forward width; None means ``4 * hidden_dim``.
        ffn_activation: ``gelu`` | ``relu``.
        dropout: Embedding, residual and feed-forward dropout.
        attention_dropout: When not None, the dropout on attention weights: it overrides the
            mixer's ``dropout`` where the mixer forms attention weights (``has_scores``);
            other mixers keep their own ``dropout``.
        positional_encoding_type: See :mod:`spectrans.layers.positional`.
        use_cls_token: Prepend a CLS token.
        gradient_checkpointing: Checkpoint every block.
        input_type: ``tokens`` | ``values``.
        init_weights: Init mode of the model-owned layers.
        embedding_init_std: Std of the normal init of the token embedding.
        cls_init_std: Std of the normal init of the CLS token.
        attention_patterns: When given, every mixer is wrapped in
            :class:`~spectrans.layers.patterns.PatternAttention` with these patterns (group
            sizes come with each call as ``token_specs``).
    """

    def __init__(
        self,
        mixer_config: TokenMixerConfig | Mapping[str, Any],
        *,
        vocab_size: int | None = None,
        hidden_dim: int = 512,
        num_layers: int = 6,
        max_sequence_length: int = 2048,
        ffn_hidden_dim: int | None = None,
        ffn_activation: str = "gelu",
        dropout: float = 0.0,
        attention_dropout: float | None = None,
        positional_encoding_type: str = "sinusoidal",
        use_cls_token: bool = False,
        gradient_checkpointing: bool = False,
        input_type: str = "tokens",
        init_weights: str = "truncnormal002",
        embedding_init_std: float = 0.02,
        cls_init_std: float = 0.02,
        attention_patterns: Sequence[AttentionPattern] | None = None,
    ) -> None:
        super().__init__(
            vocab_size=vocab_size,
            hidden_dim=hidden_dim,
            max_sequence_length=max_sequence_length,
            positional_encoding_type=positional_encoding_type,
            use_cls_token=use_cls_token,
            dropout=dropout,
            input_type=input_type,
            init_weights=init_weights,
            embedding_init_std=embedding_init_std,
            cls_init_std=cls_init_std,
        )
        mixer = resolve_mixer_config(
            mixer_config,
            hidden_dim=hidden_dim,
            # spectral mixers resample their filters, so this is a size, not a hard limit
            max_sequence_length=max_sequence_length + (1 if use_cls_token else 0),
        )
        if attention_dropout is not None and has_attention_weights(mixer):
            mixer = with_fields(mixer, dropout=attention_dropout)
        if positional_encoding_type == "learned":
            self.length_limit = max_sequence_length
        self.mixer_config = apply_positional_to_mixer(positional_encoding_type, mixer)
        self.num_layers = num_layers
        self.ffn_hidden_dim = ffn_hidden_dim if ffn_hidden_dim is not None else 4 * hidden_dim
        self.ffn_activation = ffn_activation
        self.dropout = dropout
        self.gradient_checkpointing = gradient_checkpointing
        self.attention_patterns = list(attention_patterns) if attention_patterns else None
        self.blocks = self.build_blocks()
        self.init_weights()

    def mixer_configs(self) -> list[TokenMixerConfig]:
        """The mixer config of every block: ``self.mixer_config`` for all of them."""
        return [self.mixer_config] * self.num_layers

    def build_mixer(self, config: TokenMixerConfig) -> nn.Module:
        """One token mixer from ``config`` (pattern-wrapped if patterns are set)."""
        mixer = build_layer(config)
        if self.attention_patterns is not None:
            mixer = PatternAttention(mixer, self.attention_patterns)
        return mixer

    def build_blocks(self) -> nn.ModuleList:
        """One pre-norm block per layer, each with its own mixer (:meth:`mixer_configs`)."""
        return nn.ModuleList(
            PreNormBlock(
                self.build_mixer(config),
                self.hidden_dim,
                self.ffn_hidden_dim,
                self.dropout,
                self.ffn_activation,
                self.init_mode,
                self.gradient_checkpointing,
            )
            for config in self.mixer_configs()
        )

    @classmethod
    def from_config(
        cls,
        config: EncoderModelConfig,
        mixer_config: TokenMixerConfig | Mapping[str, Any],
        *,
        vocab_size: int | None,
        input_type: str = "tokens",
        attention_patterns: Sequence[AttentionPattern] | None = None,
    ) -> Encoder:
        """Build from an :class:`EncoderModelConfig` (CLS token iff ``pooling == "cls"``)."""
        return cls(
            mixer_config,
            vocab_size=vocab_size,
            hidden_dim=config.hidden_dim,
            num_layers=config.num_layers,
            max_sequence_length=config.max_sequence_length,
            ffn_hidden_dim=config.resolved_ffn_hidden_dim,
            ffn_activation=config.ffn_activation,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            positional_encoding_type=config.positional_encoding,
            use_cls_token=config.pooling == "cls",
            gradient_checkpointing=config.gradient_checkpointing,
            input_type=input_type,
            init_weights=config.init_weights,
            embedding_init_std=config.embedding_init_std,
            cls_init_std=config.cls_init_std,
            attention_patterns=attention_patterns,
        )
