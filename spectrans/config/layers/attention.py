"""Configuration models for attention layer components.

Every class here is a pydantic v2 model with ``extra="forbid"`` and a ``name`` literal equal
to its registry name (:mod:`spectrans.registry`). ``layer_kwargs()`` returns exactly the
keyword arguments of the matching layer's constructor, so ``Layer.from_config(cfg)`` is
``Layer(**cfg.layer_kwargs())``.

Examples:
    >>> from spectrans.config.layers.attention import SpectralAttentionConfig
    >>> config = SpectralAttentionConfig(hidden_dim=768, num_heads=8, num_features=256)
    >>> config.kernel_type
    'softmax'

Note on ``bias`` and ``use_bias``: the shared base config calls the projection-bias flag
``bias``; the spectrans API calls it ``use_bias`` on some layers. Where a config has both,
``use_bias`` (when given) wins and the layer receives ``use_bias`` only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from spectrans.config.core import AttentionLayerConfig

KernelType = Literal["gaussian", "softmax"]
SpectralKernelType = Literal["gaussian", "polynomial", "spectral"]
TransformLSTType = Literal["dct", "dst", "hadamard", "wavelet", "mixed"]


class _UseBiasMixin(AttentionLayerConfig):
    """Configs whose layer takes ``use_bias`` (spectrans name) instead of ``bias``."""

    use_bias: bool | None = None

    def layer_kwargs(self) -> dict[str, Any]:
        """Constructor kwargs: ``use_bias`` resolved from ``use_bias`` or ``bias``."""
        kwargs = super().layer_kwargs()
        bias = kwargs.pop("bias")
        kwargs["use_bias"] = bias if self.use_bias is None else self.use_bias
        return kwargs


class SoftmaxAttentionConfig(AttentionLayerConfig):
    """Exact softmax attention (the baseline; PyTorch SDPA).

    Attributes:
        alibi: Add ALiBi linear distance biases to the scores.
        masked_queries: What a query at a masked position outputs: ``zero`` (0, as every
            mixer) or ``all_keys`` (the mean of all values: the LRA code's ``-1e10`` bias on
            every score of a masked query's row, uniform in float32).
    """

    name: Literal["softmax"] = "softmax"
    alibi: bool = False
    masked_queries: Literal["zero", "all_keys"] = "zero"


class SpectralAttentionConfig(_UseBiasMixin):
    """Configuration for Spectral Attention with Random Fourier Features.

    Attributes:
        num_features: Number of random Fourier features; None means head_dim.
        kernel_type: Kernel the features estimate ('gaussian' or 'softmax').
        use_orthogonal: Block-orthogonal random projections.
        feature_redraw: Redraw the projection during training every ``redraw_interval`` steps.
        redraw_interval: Training forward passes between redraws (with ``feature_redraw``).
        use_bias: Bias in the projections (alias of ``bias``).
    """

    name: Literal["spectral"] = "spectral"
    num_features: int | None = Field(None, gt=0)
    kernel_type: KernelType = "softmax"
    use_orthogonal: bool = True
    feature_redraw: bool = False
    redraw_interval: int = Field(1000, gt=0)


class PerformerAttentionConfig(AttentionLayerConfig):
    """Configuration for Performer (FAVOR+) attention.

    Attributes:
        num_features: Number of positive random features; None means 256.
        generalized: Use a deterministic generalized kernel (ReLU features) instead of the
            softmax-kernel estimate.
        use_orthogonal: Block-orthogonal random projections with chi-distributed norms.
        feature_redraw: Redraw the projection during training every ``redraw_interval`` steps.
        redraw_interval: Training forward passes between redraws (with ``feature_redraw``).
    """

    name: Literal["performer"] = "performer"
    num_features: int | None = Field(None, gt=0)
    generalized: bool = False
    use_orthogonal: bool = True
    feature_redraw: bool = False
    redraw_interval: int = Field(1000, gt=0)


class SpectralKernelAttentionConfig(AttentionLayerConfig):
    """Configuration for spectral kernel attention (``KernelAttention``).

    Attributes:
        kernel_type: Kernel ('gaussian', 'polynomial', 'spectral' = learnable spectral).
        rank: Rank of the low-rank factorisation; None means min(64, head_dim).
        num_features: Number of random features; None means the rank.
    """

    name: Literal["kernel"] = "kernel"
    kernel_type: SpectralKernelType = "gaussian"
    rank: int | None = Field(None, gt=0)
    num_features: int | None = Field(None, gt=0)


class LSTAttentionConfig(_UseBiasMixin):
    """Configuration for Linear Spectral Transform attention.

    Attributes:
        transform_type: 'dct', 'dst', 'hadamard', 'wavelet' or 'mixed' (a transform per head).
        learnable_scale: Learnable diagonal scaling over frequencies.
        normalize: Orthonormal transforms (norm="ortho").
        max_sequence_length: Number of frequencies the learned scaling is built for.
        use_bias: Bias in the projections (alias of ``bias``).
    """

    name: Literal["lst"] = "lst"
    transform_type: TransformLSTType = "dct"
    learnable_scale: bool = True
    normalize: bool = True
    max_sequence_length: int = Field(1024, gt=0)


class DCTAttentionConfig(AttentionLayerConfig):
    """Configuration for DCT-based attention.

    Attributes:
        dct_type: DCT type used as the forward transform (2 or 3; its inverse is the other).
        learnable_scale: Learnable diagonal scaling over frequencies.
        max_sequence_length: Number of frequencies the learned scaling is built for.
    """

    name: Literal["dct"] = "dct"
    dct_type: Literal[2, 3] = 2
    learnable_scale: bool = True
    max_sequence_length: int = Field(1024, gt=0)


class HadamardAttentionConfig(AttentionLayerConfig):
    """Configuration for Hadamard-based attention.

    Attributes:
        scale_by_sqrt: Scale by 1/sqrt(n) so the transform is orthonormal.
        learnable_scale: Learnable diagonal scaling over sequency components.
        max_sequence_length: Number of components the learned scaling is built for.
    """

    name: Literal["hadamard"] = "hadamard"
    scale_by_sqrt: bool = True
    learnable_scale: bool = True
    max_sequence_length: int = Field(1024, gt=0)


class MixedTransformAttentionConfig(AttentionLayerConfig):
    """Configuration for mixed transform attention (heads split across transforms).

    Attributes:
        use_fft: Include FFT heads.
        use_dct: Include DCT heads.
        use_hadamard: Include Hadamard heads.
        max_sequence_length: Number of frequencies the learned scaling is built for.
    """

    name: Literal["mixed"] = "mixed"
    use_fft: bool = True
    use_dct: bool = True
    use_hadamard: bool = True
    max_sequence_length: int = Field(1024, gt=0)
