"""Models: the generic encoder (any registry mixer), LST models, heads, and the builder.

``build_classifier`` is what the training harness calls (docs/interfaces.md §2).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from torch import nn

from spectrans.config.core import TokenMixerConfig
from spectrans.config.models import (
    EncoderModelConfig,
    HybridModelConfig,
    LSTModelConfig,
    ModelConfigUnion,
)
from spectrans.config.patterns import joint_patterns
from spectrans.layers.attention.chunked_recompute import set_recompute_mixing
from spectrans.models.base import LENGTH_KEY, BaseModel
from spectrans.models.encoder import Encoder, resolve_mixer_config
from spectrans.models.heads import (
    ClassifierHead,
    DualEncoderClassifier,
    SequenceClassifier,
    pool,
)
from spectrans.models.hybrid import AlternatingTransformer, HybridEncoder
from spectrans.models.lst import LSTDecoder, LSTEncoder, LSTTransformer, lst_kwargs

_MODEL_ADAPTER: TypeAdapter[Any] = TypeAdapter(ModelConfigUnion)


def _check_max_length(max_length: int, limit: int, what: str) -> None:
    if max_length > limit:
        raise ValueError(
            f"the task's sequence length {max_length} exceeds {LENGTH_KEY}={limit} "
            f"(the limit of {what}); raise {LENGTH_KEY} to at least {max_length}"
        )


def build_classifier(
    model_cfg: EncoderModelConfig | HybridModelConfig | LSTModelConfig | dict[str, Any],
    mixer_cfg: TokenMixerConfig | dict[str, Any] | None,
    *,
    vocab_size: int,
    num_classes: int,
    max_length: int,
    pair: bool,
    input_type: str = "tokens",
) -> nn.Module:
    """Build the classifier (or dual-encoder, ``pair=True``) the harness trains.

    ``mixer_cfg.hidden_dim`` (and ``max_sequence_length`` where the mixer has it) are taken
    from the model config. ``model_cfg.recompute_mixing`` (True/False) is set on every mixer
    that reads it (:func:`~spectrans.layers.attention.chunked_recompute.set_recompute_mixing`);
    None leaves the layers' default (keep the intermediates). ``model_cfg.name == "lst"``
    builds an LST model (``mixer_cfg`` is ignored and may be None).

    Args:
        model_cfg: :data:`ModelConfigUnion` config (or a dict with ``name``).
        mixer_cfg: Token-mixer config for the generic encoder.
        vocab_size: Token vocabulary size.
        num_classes: Number of logits.
        max_length: Longest input sequence of the task (per document for pairs).
        pair: Build a dual encoder (retrieval) instead of a sequence classifier.
        input_type: ``tokens`` | ``values``.

    Returns:
        ``SequenceClassifier``/``LSTTransformer`` with ``forward(input_ids=None,
        input_values=None, attention_mask=None) -> (B, C)``, or ``DualEncoderClassifier`` with
        ``forward(input_ids_a, attention_mask_a, input_ids_b, attention_mask_b) -> (B, C)``.

    Raises:
        ValueError: ``max_length`` over a limit (naming ``model.max_sequence_length``), or a
            positional encoding / retrieval encoding the mixer cannot honour.
    """
    if isinstance(model_cfg, dict):
        model_cfg = _MODEL_ADAPTER.validate_python(model_cfg)
    model = _build(model_cfg, mixer_cfg, vocab_size, num_classes, max_length, pair, input_type)
    if model_cfg.recompute_mixing is not None:
        set_recompute_mixing(model, model_cfg.recompute_mixing)
    return model


def _build(
    model_cfg: EncoderModelConfig | HybridModelConfig | LSTModelConfig,
    mixer_cfg: TokenMixerConfig | dict[str, Any] | None,
    vocab_size: int,
    num_classes: int,
    max_length: int,
    pair: bool,
    input_type: str,
) -> nn.Module:
    """The model of :func:`build_classifier` from a validated config."""
    if model_cfg.name == "lst":
        if model_cfg.use_positional_encoding and model_cfg.positional_encoding_type == "learned":
            _check_max_length(
                max_length, model_cfg.max_sequence_length, "the learned positional encoding"
            )
        tokens_vocab = vocab_size if input_type == "tokens" else None
        if not pair:
            return LSTTransformer(
                vocab_size=tokens_vocab,
                num_classes=num_classes,
                pooling=model_cfg.pooling,
                head_hidden_dim=model_cfg.head_hidden_dim,
                input_type=input_type,
                head_init_weights=model_cfg.head_init_mode,
                **lst_kwargs(model_cfg),
            )
        if model_cfg.retrieval_encoding == "joint":
            raise ValueError(
                "model.retrieval_encoding='joint' needs softmax attention and the "
                "LST model has none; use retrieval_encoding='independent'"
            )
        encoder: BaseModel = LSTEncoder(
            vocab_size=tokens_vocab,
            use_cls_token=model_cfg.pooling == "cls",
            input_type=input_type,
            **lst_kwargs(model_cfg),
        )
    else:
        if mixer_cfg is None:
            raise ValueError("model 'encoder' needs an attention (token mixer) config")
        if model_cfg.positional_encoding == "learned":
            _check_max_length(
                max_length, model_cfg.max_sequence_length, "the learned positional encoding"
            )
        joint = pair and model_cfg.retrieval_encoding == "joint"
        encoder_class = HybridEncoder if model_cfg.name == "hybrid" else Encoder
        encoder = encoder_class.from_config(
            model_cfg,
            mixer_cfg,
            vocab_size=vocab_size if input_type == "tokens" else None,
            input_type=input_type,
            attention_patterns=joint_patterns(["doc_a", "doc_b"]) if joint else None,
        )
        if not pair:
            return SequenceClassifier(
                encoder,
                model_cfg.pooling,
                num_classes,
                model_cfg.head_hidden_dim,
                model_cfg.head_init_mode,
            )
    return DualEncoderClassifier(
        encoder,
        model_cfg.pooling,
        num_classes,
        model_cfg.head_hidden_dim,
        model_cfg.retrieval_interaction,
        model_cfg.retrieval_encoding,
        model_cfg.head_init_mode,
        model_cfg.retrieval_head,
    )


__all__ = [
    "AlternatingTransformer",
    "HybridEncoder",
    "BaseModel",
    "ClassifierHead",
    "DualEncoderClassifier",
    "Encoder",
    "LSTDecoder",
    "LSTEncoder",
    "LSTTransformer",
    "SequenceClassifier",
    "build_classifier",
    "pool",
    "resolve_mixer_config",
]
