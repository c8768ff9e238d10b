"""Model configs: the generic encoder, the hybrid encoder and the LST transformer.

All are pydantic v2 models with ``extra="forbid"``; :data:`ModelConfigUnion` chooses one by
``name`` (``model=encoder``, ``model=hybrid`` or ``model=lst`` on the command line). The token
mixer of the generic encoder is a separate config (any
:data:`spectrans.config.TokenMixerConfigUnion`); ``hidden_dim`` and ``max_sequence_length``
of that mixer config are overwritten from the model config by
:func:`spectrans.models.build_classifier`.

Examples:
    >>> from pydantic import TypeAdapter
    >>> cfg = TypeAdapter(ModelConfigUnion).validate_python({"name": "lst", "hidden_dim": 64})
    >>> type(cfg).__name__, cfg.transform_type
    ('LSTModelConfig', 'dct')
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from spectrans.config.core import InitWeightsMode, StrictModel, check_divides

PositionalEncodingType = Literal["sinusoidal", "sinusoidal2d", "learned", "rotary", "alibi", "none"]
"""``sinusoidal``/``sinusoidal2d``/``learned`` are added to the embeddings (``sinusoidal2d``: row
and column of a row-major square image); ``rotary``/``alibi`` are handed to the token mixer
(``use_rope=True`` / ``alibi=True``) and refused by mixers that cannot honour them."""
PoolingType = Literal["cls", "mean", "mean_all", "last"]
"""``mean``: over the unmasked positions; ``mean_all``: over every position (the LRA code's)."""
RetrievalInteraction = Literal["concat4", "concat2"]
"""``concat4``: ``[u, v, u*v, u-v]``; ``concat2``: ``[u, v]``."""
RetrievalHead = Literal["mlp", "lra"]
"""``mlp``: ``Dense(H) -> ReLU -> Dense(C)``; ``lra``: ``Dense(H) -> ReLU -> Dense(H // 2) -> ReLU
-> Dense(C)`` (LRA's ``classifier_head_dual``)."""
RetrievalEncoding = Literal["independent", "joint"]
"""``independent``: each document attends only to itself (LRA); ``joint``: one sequence."""
TransformLSTType = Literal["dct", "dst", "hadamard", "wavelet", "mixed"]
ActivationType = Literal["gelu", "relu"]


class _ModelCommon(StrictModel):
    """Fields shared by every model config.

    Attributes:
        hidden_dim: Model width D.
        num_layers: Number of pre-norm blocks.
        ffn_hidden_dim: Feed-forward inner width; None means ``4 * hidden_dim``.
        ffn_activation: Feed-forward nonlinearity.
        dropout: Dropout on embeddings, residual branches and inside the feed-forward.
        max_sequence_length: Most input tokens (CLS not counted) the model accepts where
            something has a length limit (learned positions, mixers with a learned spectrum).
        pooling: Sequence summary for the head: ``cls`` token, masked ``mean`` or ``last``
            real token.
        head_hidden_dim: Width of the head MLP ``Dense -> ReLU -> Dense``.
        retrieval_interaction: Features of a document pair fed to the head.
        retrieval_head: Depth of the pair head, see :data:`RetrievalHead`.
        retrieval_encoding: How the dual encoder sees the two documents.
        gradient_checkpointing: Recompute each block in the backward pass.
        recompute_mixing: Backward of the token mixers that can rebuild their mixing from
            q, k and v (LST, Performer and other feature-map attention, S4D): True rebuilds
            it in chunks of batch rows (less memory, one more forward of the mixing), False
            keeps autograd's intermediates, None leaves the layers' default (keep). Never
            under ``torch.compile``.
        init_weights: Initialisation of embeddings, feed-forward and head.
        head_init_weights: Initialisation of the classifier head alone (None: ``init_weights``);
            ``xavier`` gives the LRA code's head, flax's ``Dense`` default (LeCun normal
            kernels, zero biases).
    """

    hidden_dim: int = Field(512, gt=0)
    num_layers: int = Field(6, ge=1)
    ffn_hidden_dim: int | None = Field(None, gt=0)
    ffn_activation: ActivationType = "gelu"
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    max_sequence_length: int = Field(2048, gt=0)
    pooling: PoolingType = "cls"
    head_hidden_dim: int = Field(512, gt=0)
    retrieval_interaction: RetrievalInteraction = "concat4"
    retrieval_head: RetrievalHead = "mlp"
    retrieval_encoding: RetrievalEncoding = "independent"
    gradient_checkpointing: bool = False
    recompute_mixing: bool | None = None
    init_weights: InitWeightsMode = "truncnormal002"
    head_init_weights: InitWeightsMode | None = None

    @property
    def head_init_mode(self) -> str:
        """The classifier head's init mode: ``head_init_weights``, else ``init_weights``."""
        return self.head_init_weights or self.init_weights

    @property
    def resolved_ffn_hidden_dim(self) -> int:
        """Feed-forward inner width actually used."""
        return self.ffn_hidden_dim if self.ffn_hidden_dim is not None else 4 * self.hidden_dim


class EncoderModelConfig(_ModelCommon):
    """Generic pre-norm encoder whose token mixer is any registry entry.

    Attributes:
        name: ``"encoder"``.
        attention_dropout: Dropout on the attention weights; when set, it overrides the
            mixer config's ``dropout`` of mixers that form attention weights (``has_scores``,
            e.g. softmax). Mixers without an attention matrix keep their own ``dropout``
            (as LRA's Performer and linear attention ignore their attention dropout rate).
        positional_encoding: See :data:`PositionalEncodingType`.
        embedding_init_std: Standard deviation of the normal init of the token embedding
            (0.02 here; LRA uses 1.0).
        cls_init_std: Standard deviation of the normal init of the CLS token (0: zeros, as
            LRA).
    """

    name: Literal["encoder"] = "encoder"
    attention_dropout: float | None = Field(None, ge=0.0, lt=1.0)
    positional_encoding: PositionalEncodingType = "sinusoidal"
    embedding_init_std: float = Field(0.02, ge=0.0)
    cls_init_std: float = Field(0.02, ge=0.0)


class LSTModelConfig(_ModelCommon):
    """Configuration of :class:`spectrans.models.lst.LSTTransformer` (the spectrans LST parameters).

    Attributes:
        name: ``"lst"``.
        vocab_size: Token vocabulary; None means inputs arrive as embeddings.
        num_classes: Classes of the head; None means the model returns hidden states.
        num_heads: Heads of the LST attention layers.
        transform_type: Spectral transform of every LST layer.
        use_conv_bias: Bias of the LST q/k/v/out projections (``use_bias`` of the layer);
            the name is the spectrans API's, LST has no convolution.
        use_positional_encoding: False is the same as ``positional_encoding_type="none"``.
        positional_encoding_type: See :data:`PositionalEncodingType`.
    """

    name: Literal["lst"] = "lst"
    vocab_size: int | None = Field(None, gt=0)
    num_classes: int | None = Field(None, gt=0)
    num_heads: int = Field(8, gt=0)
    max_sequence_length: int = Field(1024, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    pooling: PoolingType = "mean"
    transform_type: TransformLSTType = "dct"
    use_conv_bias: bool = True
    use_positional_encoding: bool = True
    positional_encoding_type: PositionalEncodingType = "sinusoidal"

    @model_validator(mode="after")
    def _heads_divide_width(self) -> LSTModelConfig:
        check_divides(
            self.hidden_dim,
            self.num_heads,
            "num_heads",
            "change model.hidden_dim or model.num_heads",
        )
        return self


class HybridModelConfig(EncoderModelConfig):
    """Encoder whose blocks interleave the token mixer with softmax attention.

    Block ``i`` (0-based) uses softmax attention when ``(i + 1) % attention_every == 0`` and the
    configured token mixer otherwise (``attention_every=2``: mixer, softmax, mixer, ...;
    ``attention_every=1``: softmax only).

    Attributes:
        name: ``"hybrid"``.
        attention_every: Period of the softmax blocks.
        attention_heads: Heads of the softmax blocks.
    """

    name: Literal["hybrid"] = "hybrid"  # type: ignore[assignment]
    attention_every: int = Field(2, ge=1)
    attention_heads: int = Field(4, gt=0)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> HybridModelConfig:
        check_divides(
            self.hidden_dim,
            self.attention_heads,
            "attention_heads",
            "change model.hidden_dim or model.attention_heads",
        )
        return self


ModelConfigUnion = Annotated[
    EncoderModelConfig | LSTModelConfig | HybridModelConfig, Field(discriminator="name")
]
"""Any model config, chosen by ``name``."""

__all__ = [
    "EncoderModelConfig",
    "HybridModelConfig",
    "LSTModelConfig",
    "ModelConfigUnion",
    "PoolingType",
    "PositionalEncodingType",
    "RetrievalEncoding",
    "RetrievalHead",
    "RetrievalInteraction",
]
