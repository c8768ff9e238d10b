"""Spectral attention: linear attention through kernel feature maps.

Every layer here computes, per head, with feature maps ``phi`` of queries and keys,

    out_i = phi(q_i)^T sum_j phi(k_j) v_j^T / phi(q_i)^T sum_j phi(k_j),

in O(N m d) time (:mod:`spectrans.layers.attention.linear`); causal attention uses chunked
prefix sums, masked keys contribute nothing, outputs at masked positions are zero.

No ``N x N`` attention matrix is formed, so there are no attention weights to drop: ``dropout``
acts on the attention output (before ``out_proj``), and the encoder's ``attention_dropout``
(dropout on attention weights) does not reach these layers (LRA's Performer likewise ignores
its attention dropout rate).

- :class:`SpectralAttention`: random Fourier features (Rahimi and Recht, 2007; Peng et al.,
  2021) of the Gaussian kernel ``exp(-|q - k|^2 / (2 sqrt(d)))`` or of the softmax kernel
  ``exp(q.k / sqrt(d))``. Trigonometric features are signed, so a normaliser can be negative;
  it is clamped away from zero keeping its sign (the estimate stays bounded but is poor when
  the normaliser is small; prefer :class:`PerformerAttention` for softmax).
- :class:`PerformerAttention`: FAVOR+ positive orthogonal random features of the softmax
  kernel (Choromanski et al., 2021), or the deterministic generalized ReLU kernel of LRA.
- :class:`KernelAttention`: Gaussian (RFF), polynomial (random Maclaurin features of rank
  ``rank``) or learnable spectral (trained frequencies) kernels.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Literal

from torch import Tensor

from spectrans.config.layers.attention import (
    PerformerAttentionConfig,
    SpectralAttentionConfig,
    SpectralKernelAttentionConfig,
)
from spectrans.kernels import (
    FeatureMap,
    GaussianRFF,
    LearnableSpectralKernel,
    PolynomialKernel,
    PositiveRandomFeatures,
    ReLUFeatures,
    TrigSoftmaxRFF,
)
from spectrans.layers.attention.base import AttentionLayer, check_input, zero_masked
from spectrans.layers.attention.chunked_recompute import (
    batch_chunks,
    recompute_in_chunks,
    wants_recompute,
)
from spectrans.layers.attention.linear import feature_attention
from spectrans.layers.attention.projections import (
    add_qkv_projections,
    merge_heads,
    project_qkv,
)
from spectrans.layers.dropout import Dropout
from spectrans.registry import register_mixer

RECOMPUTE_MIN_CHUNKS = 8
"""Chunks of batch rows (at most one per row) the recomputing backward takes at least: the
rebuilt features of a chunk are ``m / d`` times its queries' size (float32 for the signed
kernels). ``python -m experiments.peak_memory --recompute on`` (CPU, bf16 autocast, batch 8,
width 256, 4 heads, N = 4096) put the Performer, Gaussian-kernel and random-feature layers at
1.00x, 1.06x and 1.14x the softmax layer's peak in four chunks and at 1.00x in eight."""


def _attention_in_value_dtype(
    kernel: FeatureMap, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, *, causal: bool
) -> Tensor:
    """:func:`feature_attention` cast to ``v``'s dtype, ``(B, H, N, e)``.

    The cast is where the output projection would take it anyway; done here, the recomputing
    backward's incoming gradient is in ``v``'s dtype too (half the bytes of float32 under
    bf16 autocast).
    """
    return feature_attention(kernel, q, k, v, mask, causal=causal).to(v.dtype)


class _FeatureAttention(AttentionLayer):
    """Shared plumbing of the feature-map layers: projections, features, linear attention."""

    has_queries_keys: ClassVar[bool] = True
    has_scores: ClassVar[bool] = False
    supports_causal: ClassVar[bool] = True
    kernel: FeatureMap

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        head_dim: int | None,
        dropout: float,
        causal: bool,
        init_weights: str,
        bias: bool,
        use_rope: bool,
        qk_norm: bool,
    ) -> None:
        super().__init__()
        self.check_options(causal=causal, use_rope=use_rope, qk_norm=qk_norm, dropout=dropout)
        add_qkv_projections(
            self,
            hidden_dim,
            num_heads,
            head_dim,
            bias=bias,
            qk_norm=qk_norm,
            use_rope=use_rope,
            init_weights=init_weights,
        )
        self.hidden_dim, self.causal = hidden_dim, causal
        self.dropout = Dropout(dropout)

    recompute_mixing: bool | None = None
    """Whether the backward rebuilds the features and the linear attention from q, k and v in
    chunks of batch rows (:mod:`spectrans.layers.attention.chunked_recompute`) instead of
    keeping the ``(B, H, N, m)`` feature tensors: True, False, or None for the default (keep:
    :data:`~spectrans.layers.attention.chunked_recompute.RECOMPUTE_DEFAULT`). One more forward
    of the attention per step. Never inside compiled code."""

    def recomputes(self, q: Tensor, k: Tensor, v: Tensor) -> bool:
        """Whether this forward takes :func:`recompute_in_chunks` (:attr:`recompute_mixing`).

        Besides, autograd must be recording and the code must not be being compiled.
        """
        tracked = q.requires_grad or k.requires_grad or v.requires_grad
        return wants_recompute(self.recompute_mixing, tracked)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, None]:
        """Linear attention; x (B, N, D), mask (B, N) True on real tokens -> (B, N, D).

        With ``return_attention`` returns ``(out, None)``: no N x N weights are formed.
        """
        mask = check_input(x, mask, self.hidden_dim)
        q, k, v = project_qkv(self, x)  # (B, H, N, d) each
        self.kernel.maybe_redraw()
        attend = functools.partial(_attention_in_value_dtype, self.kernel, causal=self.causal)
        if self.recomputes(q, k, v):
            params = [p for p in self.kernel.parameters() if p.requires_grad]
            chunks = batch_chunks(q, RECOMPUTE_MIN_CHUNKS)
            out = recompute_in_chunks(attend, (q, k, v, mask), params, chunks)  # (B, H, N, d)
        else:
            out = attend(q, k, v, mask)  # (B, H, N, d)
        out = self.out_proj(self.dropout(merge_heads(out)))  # (B, N, D)
        out = zero_masked(out, mask)  # (B, N, D)
        return (out, None) if return_attention else out


@register_mixer(
    "spectral",
    SpectralAttentionConfig,
    family="attention",
    complexity="O(n)",
    description="random Fourier feature (RFF) attention",
    paper="Rahimi & Recht 2007; Peng et al. 2021, Random feature attention",
)
class SpectralAttention(_FeatureAttention):
    """Multi-head attention through random Fourier features (RFF).

    ``kernel_type='gaussian'``: ``k(q, k) = exp(-|q - k|^2 / (2 sqrt(d)))`` with features
    ``[cos, sin](W q / d^{1/4}) / sqrt(m)``. ``kernel_type='softmax'``: ``exp(q.k / sqrt(d))``
    with the same features times ``exp(|x|^2 / (2 sqrt(d)))`` (stabilised, see
    :func:`spectrans.kernels.trig_softmax_features`). Both have ``2 m`` features and signed
    normalisers (sign-preserving clamp; see the module docstring).

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads H.
        num_features: Number of random frequencies m (default: head_dim).
        head_dim: Head width d (default ``hidden_dim // num_heads``).
        kernel_type: 'gaussian' or 'softmax'.
        use_orthogonal: Block-orthogonal frequencies with chi(d) norms.
        feature_redraw: Redraw the frequencies in training every ``redraw_interval`` calls.
        dropout: Dropout on the attention output.
        use_bias: Biases in the projections.
        redraw_interval: Training calls between redraws.
        causal: Output i depends on inputs ``<= i`` only.
        init_weights: Initialisation mode of the projections.
        use_rope: Rotary position embeddings on queries and keys.
        qk_norm: LayerNorm on each head's queries and keys.

    Attributes:
        head_dim: Width of each head.
        num_features: Number of random frequencies.
        q_proj, k_proj, v_proj, out_proj: The projections.
        kernel: The feature map (:class:`~spectrans.kernels.RandomFeatureMap`).
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        num_heads: int = 8,
        num_features: int | None = None,
        head_dim: int | None = None,
        kernel_type: Literal["gaussian", "softmax"] = "softmax",
        use_orthogonal: bool = True,
        feature_redraw: bool = False,
        dropout: float = 0.0,
        use_bias: bool = True,
        *,
        redraw_interval: int = 1000,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        use_rope: bool = False,
        qk_norm: bool = False,
    ) -> None:
        super().__init__(
            hidden_dim,
            num_heads,
            head_dim,
            dropout,
            causal,
            init_weights,
            use_bias,
            use_rope,
            qk_norm,
        )
        self.num_features = num_features if num_features is not None else self.head_dim
        self.kernel_type = kernel_type
        self.kernel = self._make_kernel(
            kernel_type,
            orthogonal=use_orthogonal,
            feature_redraw=feature_redraw,
            redraw_interval=redraw_interval,
        )

    def _make_kernel(self, kernel_type: str, **options: bool | int) -> FeatureMap:
        """The feature map for ``kernel_type`` (``options``: the random-projection settings)."""
        if kernel_type == "gaussian":
            return GaussianRFF(
                self.head_dim, self.num_features, bandwidth=self.head_dim**0.25, **options
            )
        if kernel_type == "softmax":
            return TrigSoftmaxRFF(self.head_dim, self.num_features, **options)
        raise ValueError(
            f"unknown kernel_type '{kernel_type}' for SpectralAttention; "
            "use 'gaussian' or 'softmax'"
        )


@register_mixer(
    "performer",
    PerformerAttentionConfig,
    family="attention",
    complexity="O(n)",
    description="FAVOR+ positive random features",
    paper="Choromanski et al. 2021, Rethinking attention with Performers",
)
class PerformerAttention(SpectralAttention):
    """Performer attention: FAVOR+ positive (orthogonal) random features of softmax.

    ``phi(x) = exp(W x' - |x'|^2 / 2 - c) / sqrt(m)``, ``x' = x d^{-1/4}``, is an unbiased
    positive estimate of ``exp(q.k / sqrt(d))``; all normalisers are positive. With
    ``generalized`` the kernel is the deterministic ``(relu(q) + 1e-3).(relu(k) + 1e-3)``
    (the LRA generalized Performer; ``num_features`` and ``use_orthogonal`` are unused).

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads H.
        num_features: Number of random features m (default 256).
        generalized: Deterministic ReLU features instead of the softmax estimate.
        dropout: Dropout on the attention output.
        head_dim: Head width d (default ``hidden_dim // num_heads``).
        causal: Output i depends on inputs ``<= i`` only (prefix sums).
        init_weights: Initialisation mode of the projections.
        bias: Biases in the projections.
        use_rope: Rotary position embeddings on queries and keys.
        qk_norm: LayerNorm on each head's queries and keys.
        use_orthogonal: Block-orthogonal features with chi(d) norms.
        feature_redraw: Redraw the features in training every ``redraw_interval`` calls.
        redraw_interval: Training calls between redraws.

    Attributes:
        generalized: Whether the generalized ReLU kernel is used.
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        num_heads: int = 8,
        num_features: int | None = None,
        generalized: bool = False,
        dropout: float = 0.0,
        *,
        head_dim: int | None = None,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        bias: bool = True,
        use_rope: bool = False,
        qk_norm: bool = False,
        use_orthogonal: bool = True,
        feature_redraw: bool = False,
        redraw_interval: int = 1000,
    ) -> None:
        self.generalized = generalized  # read by _make_kernel during super().__init__
        super().__init__(
            hidden_dim,
            num_heads,
            num_features if num_features is not None else 256,
            head_dim,
            "softmax",
            use_orthogonal,
            feature_redraw,
            dropout,
            bias,
            redraw_interval=redraw_interval,
            causal=causal,
            init_weights=init_weights,
            use_rope=use_rope,
            qk_norm=qk_norm,
        )

    def _make_kernel(self, kernel_type: str, **options: bool | int) -> FeatureMap:
        """FAVOR+ positive features, or the ReLU kernel when ``generalized``."""
        if self.generalized:
            return ReLUFeatures(self.head_dim)
        return PositiveRandomFeatures(self.head_dim, self.num_features, **options)


@register_mixer(
    "kernel",
    SpectralKernelAttentionConfig,
    family="attention",
    complexity="O(n)",
    description="low-rank kernel attention",
    paper="Katharopoulos et al. 2020, Transformers are RNNs",
)
class KernelAttention(_FeatureAttention):
    """Linear attention with a chosen kernel and low-rank feature map.

    - ``gaussian``: RFF of ``exp(-|q - k|^2 / (2 sqrt(d)))``, ``num_features`` frequencies;
    - ``polynomial``: rank-``rank`` random Maclaurin features of ``(q.k / sqrt(d) + 1)^2``;
    - ``spectral``: ``mean_i cos(w_i.(q - k) / d^{1/4})`` with ``num_features`` learnable
      frequencies ``w_i``.

    All three have signed features (sign-preserving normaliser clamp).

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads H.
        kernel_type: 'gaussian', 'polynomial' or 'spectral'.
        rank: Rank of the factorisation (default ``min(64, head_dim)``).
        num_features: Frequencies of the gaussian/spectral kernels (default: ``rank``).
        dropout: Dropout on the attention output.
        head_dim: Head width d (default ``hidden_dim // num_heads``).
        causal: Output i depends on inputs ``<= i`` only.
        init_weights: Initialisation mode of the projections.
        bias: Biases in the projections.
        use_rope: Rotary position embeddings on queries and keys.
        qk_norm: LayerNorm on each head's queries and keys.

    Attributes:
        kernel_type: The kernel name.
        rank: Rank of the approximation.
    """

    def __init__(
        self,
        hidden_dim: int = 512,
        num_heads: int = 8,
        kernel_type: Literal["gaussian", "polynomial", "spectral"] = "gaussian",
        rank: int | None = None,
        num_features: int | None = None,
        dropout: float = 0.0,
        *,
        head_dim: int | None = None,
        causal: bool = False,
        init_weights: str = "truncnormal002",
        bias: bool = True,
        use_rope: bool = False,
        qk_norm: bool = False,
    ) -> None:
        super().__init__(
            hidden_dim, num_heads, head_dim, dropout, causal, init_weights, bias, use_rope, qk_norm
        )
        for key, value in (("rank", rank), ("num_features", num_features)):
            if value is not None and value <= 0:
                raise ValueError(f"{key} must be positive, got {value}")
        self.kernel_type = kernel_type
        self.rank = rank if rank is not None else min(64, self.head_dim)
        self.num_features = num_features if num_features is not None else self.rank
        if kernel_type == "gaussian":
            self.kernel = GaussianRFF(
                self.head_dim, self.num_features, bandwidth=self.head_dim**0.25
            )
        elif kernel_type == "polynomial":
            self.kernel = PolynomialKernel(self.head_dim, self.rank)
        elif kernel_type == "spectral":
            self.kernel = LearnableSpectralKernel(self.head_dim, self.num_features)
        else:
            raise ValueError(
                f"unknown kernel_type '{kernel_type}' for KernelAttention; use "
                "'gaussian', 'polynomial' or 'spectral'"
            )
