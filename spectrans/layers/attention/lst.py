r"""Linear Spectral Transform (LST) attention: linear attention mixed by a learned spectral filter.

Per head, with queries, keys and values :math:`q, k, v \in \mathbb{R}^{N \times d}`, an
orthonormal transform :math:`T` along the sequence (DCT-II, DST-II, Walsh-Hadamard or the real
FFT) and a learned real gain per frequency :math:`\Lambda \in \mathbb{R}^{F}`:

.. math::

    M = T^{-1}\,\mathrm{diag}(\Lambda)\,T \in \mathbb{R}^{N \times N}, \qquad
    y_i = \sigma(q_i) \odot \sum_{j} M_{ij}\, \big(\sigma(k_j) \odot v_j\big),

with :math:`\sigma` the logistic sigmoid and :math:`\odot` elementwise per channel: a gated
linear attention whose token mixing is a learned spectral filter. It is linear in :math:`v`
and costs :math:`O(N d \log N)` per head (two fast transforms; never an ``N x N`` matrix).
The heads are concatenated and projected back to ``hidden_dim`` (``out_proj``).

Frequency gains (``scale``, shape ``(num_heads, max_sequence_length)``): row ``h`` is a
profile over normalised frequency :math:`f \in [0, 1]` (DC to the highest frequency or
sequency). For another length ``N`` the ``F`` coefficients get the profile linearly
interpolated at :math:`f = k / (F - 1)` (see :mod:`spectrans.layers.spectral_filter`), so any
``N`` works, also ``N > max_sequence_length``. Init: :math:`\Lambda_h(f) = \exp(-f/\tau_h)`,
:math:`\tau_h` log-spaced over the heads from 1 to :math:`4 / (\pi L)`: low-pass filters whose
Cauchy-shaped kernels span from about one token to about ``L / 4`` tokens, so the layer mixes
tokens at init (:math:`\Lambda = 1` would make :math:`M = I`, a no-op). With
``learnable_scale=False`` the profile is a fixed buffer and ``scale`` is None.

Masking: padded positions are zero samples of the signal. With :math:`m_j \in \{0, 1\}` the
mask, :math:`u_j = m_j\, \sigma(k_j) \odot v_j` enters the filter, so inputs at masked
positions cannot reach any output, and outputs at masked positions are set to zero (after
``out_proj``). No ``N x N`` attention matrix is formed, so ``dropout`` acts on the mixed values
before ``out_proj`` and the encoder's ``attention_dropout`` (on attention weights) does not
reach this layer. Hadamard heads zero-pad ``N`` to :math:`P = 2^{\lceil \log_2 N\rceil}`, filter,
and crop back to ``N``.

Causal (``causal=True``): the mixing is the causal convolution
:math:`y_i = \sigma(q_i) \odot \sum_{j \le i} h_{i-j}\, u_j` with the filter's impulse
response :math:`h = (M e_0)_{0..N-1}` (for FFT heads :math:`M` at length :math:`2N`, so the
circular wrap never enters), computed by a zero-padded FFT of length ``>= 2N``; it is causal by
construction and :math:`\Lambda` stays the learned parameter.

``normalize`` / ``scale_by_sqrt`` choose orthonormal transforms (True) or scipy's
``backward`` pair (unnormalised forward, exact inverse). :math:`M` does not depend on the
normalisation of :math:`T` (it cancels in :math:`T^{-1} \Lambda T`), so the flag changes
rounding only; it is kept for the spectrans API.

References:
    James Lee-Thorp et al. 2022. FNet: Mixing tokens with Fourier transforms. NAACL.
    Yi Tay et al. 2021. Long Range Arena: A benchmark for efficient transformers. ICLR.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from spectrans.arguments import pick_args
from spectrans.config.layers.attention import (
    DCTAttentionConfig,
    HadamardAttentionConfig,
    LSTAttentionConfig,
    MixedTransformAttentionConfig,
)
from spectrans.layers.attention.base import AttentionLayer, check_input, zero_masked
from spectrans.layers.attention.chunked_recompute import wants_recompute
from spectrans.layers.attention.gated_projection import gated_out_projection
from spectrans.layers.attention.lst_recompute import masked, recompute_gated_mix
from spectrans.layers.attention.projections import (
    add_qkv_projections,
    merge_heads,
    project_qkv,
)
from spectrans.layers.dropout import Dropout
from spectrans.layers.folded_filter import FOLD_KINDS, folded_filter
from spectrans.layers.spectral_filter import (
    MATRIX_KINDS,
    causal_filter,
    coefficient_gains,
    decaying_profile,
    factored_filter,
    impulse_response,
    make_transform,
    matrix_filter,
    spectral_filter,
)
from spectrans.registry import register_mixer
from spectrans.transforms.precision import compute_dtype

TransformType = Literal["dct", "dst", "hadamard", "wavelet", "mixed"]
MixingPath = Literal["auto", "gemm", "folded", "factored", "dense", "fast"]
DENSE_MAX_LENGTH = 1024  # auto: dense operator on CUDA up to this length (measured on H200)
GEMM_MAX_LENGTH = (
    4096  # auto: transform-matrix GEMMs on CUDA up to this length (results/paths_probe.md)
)
FOLD_ODD_LENGTHS = True
"""auto: where it would take ``gemm`` at an odd length, take ``folded`` instead
(:meth:`mix_folded`: the DCT and DST matrices by their mirror symmetry as four half-size
GEMMs, half the multiply-adds; groups of other kinds keep their GEMMs).

Read off the CUDA-graph replays of one layer's forward+backward on an H200 in bf16 at the
ListOps width (B, D, H) = (32, 512, 8), DCT (``python -m experiments.probe_paths --tables lst
--transforms dct --timing graph --repeats 5``, ``results/paths_probe.md``, 2026-12-01
17:19 UTC): at N = 2001 (the ListOps presets' length with the class token) ``folded`` takes
5.54 ms against 7.31 ms for ``gemm``; at the even lengths 1024, 2000, 3000 and 4096 ``gemm``
is as fast or faster (2.25, 4.29, 6.70, 9.69 ms against 2.56, 4.74, 8.78, 9.76 ms), and so
is the Pathfinder-32 training step at N = 1024 (5.14 against 5.31 ms compiled with CUDA
graphs, ``results/train_step.md``). Going from N = 2000 to 2001 costs ``gemm`` 70 % and
``folded`` 17 %: an odd ``(N, N)`` matrix leaves every GEMM's inner dimension unaligned,
while the folded halves are ``(N+1)/2`` and ``(N-1)/2`` wide (the likely cause; not
profiled)."""
FACTORED_MIN_LENGTH: dict[str, int] = {"hadamard": 1024}
r"""auto: the factored GEMMs on CUDA from this length on (before ``gemm``), per filter kind,
for layers at least :data:`FACTORED_MIN_WIDTH` wide.

Read off the CUDA-graph replays of one layer's forward+backward on an H200 in bf16
(``python -m experiments.probe_paths --timing graph``, ``results/paths_probe.md``), the
device's time, which is what compiled training with CUDA graphs pays: the Hadamard filter as
:math:`H_a \otimes H_b` GEMMs beats the transform-matrix GEMMs from N = 1024 at both widths
probed (1.96 against 2.32 ms at the ListOps width and N = 1024, 3.72 against 4.63 ms at
N = 2000; 0.45 against 0.55 ms at the layer-benchmark width) and the fast transform at every
N probed. Eager timings at N = 1024 are bound by kernel launches and favour ``gemm`` by 5-8 %
(4.39 against 4.62 ms at the ListOps width, 4.45 against 4.82 ms at the layer width). The
four-step DCT/DST never beat both ``gemm`` and ``fast`` (its reorder, twiddle and
gain passes are separate kernels), so those kinds have no entry. A layer takes ``factored``
only when every kind it uses has an entry and ``n`` reaches the largest of them."""
FACTORED_MIN_WIDTH = 256
"""auto: ``factored`` only for layers whose heads span at least this many channels (H d).

The factored GEMMs act on the ``(B, N, H d)`` signal with ``H d`` as their inner dimension.
Measured on the H200 (``results/train_step.md``, 2026-11-30 21:01 UTC): the Pathfinder-32
training step (H d = 32, N = 1024) took 6.85 ms with the factored Hadamard against 5.11 ms with
``gemm``, while the ListOps step (H d = 512, N = 2000) went from 16.79 to 15.90 ms."""
_MIXED_LST_KINDS = ("dct", "dst", "hadamard")
_LST_LAYER_ARGS = (
    "hidden_dim",
    "num_heads",
    "dropout",
    "head_dim",
    "causal",
    "use_rope",
    "qk_norm",
    "init_weights",
    "max_sequence_length",
)
"""Arguments every LST layer takes under the same name and passes on unchanged."""


def split_heads_evenly(num_heads: int, kinds: list[str]) -> list[str]:
    """Assign ``num_heads`` heads to ``kinds`` in contiguous blocks as evenly as possible.

    The first ``num_heads % len(kinds)`` kinds get one extra head; kinds may get zero heads
    when there are fewer heads than kinds.
    """
    base, extra = divmod(num_heads, len(kinds))
    out: list[str] = []
    for i, kind in enumerate(kinds):
        out += [kind] * (base + (1 if i < extra else 0))
    return out


class _LSTFilterAttention(AttentionLayer):
    """Shared implementation: one filter kind per head, heads batched per kind.

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads H.
        head_kinds: The filter kind of each head (``len(head_kinds) == num_heads``).
        learnable_scale: Learn the frequency profile (else a fixed buffer).
        normalized: Orthonormal transforms (rounding only).
        dropout: Dropout on the mixed values before ``out_proj``.
        bias: Biases in the projections.
        head_dim: Per-head width; None means ``hidden_dim // num_heads``.
        causal: Causal convolution by the filter's impulse response.
        use_rope: Rotate q and k by RoPE before the gates.
        qk_norm: LayerNorm on q and k per head.
        init_weights: Projection init mode.
        max_sequence_length: Number of profile samples ``L`` per head.
    """

    has_queries_keys = True
    has_scores = False
    supports_causal = True

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int,
        head_kinds: list[str],
        learnable_scale: bool,
        normalized: bool,
        dropout: float,
        bias: bool,
        head_dim: int | None,
        causal: bool,
        use_rope: bool,
        qk_norm: bool,
        init_weights: str,
        max_sequence_length: int,
    ) -> None:
        super().__init__()
        if num_heads < 1 or max_sequence_length < 1:
            raise ValueError(
                f"num_heads ({num_heads}) and max_sequence_length "
                f"({max_sequence_length}) must be positive"
            )
        self.check_options(causal=causal, use_rope=use_rope, qk_norm=qk_norm)
        self.hidden_dim, self.causal = hidden_dim, causal
        self.max_sequence_length, self.normalize = max_sequence_length, normalized
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
        self.head_kinds = list(head_kinds)
        per_head = len(set(head_kinds)) > 1
        kinds = head_kinds if per_head else head_kinds[:1]
        self.transforms = nn.ModuleList([make_transform(k, normalized) for k in kinds])
        self.groups = self._groups(per_head)  # (kind, first head, end head, transform index)
        min_tau = min(1.0, 4.0 / (math.pi * max_sequence_length))
        profile = torch.cat(
            [
                decaying_profile(end - start, max_sequence_length, min_tau)
                for _, start, end, _ in self.groups
            ]
        )  # (H, L)
        if learnable_scale:
            self.scale: nn.Parameter | None = nn.Parameter(profile)
        else:
            self.scale = None
            self.register_buffer("fixed_scale", profile)
        self.dropout = Dropout(dropout)

    def _groups(self, per_head: bool) -> list[tuple[str, int, int, int]]:
        """Contiguous head blocks of one kind."""
        groups: list[tuple[str, int, int, int]] = []
        for h, kind in enumerate(self.head_kinds):
            if groups and groups[-1][0] == kind:
                groups[-1] = (kind, groups[-1][1], h + 1, groups[-1][3])
            else:
                groups.append((kind, h, h + 1, h if per_head else 0))
        return groups

    @property
    def profile(self) -> Tensor:
        """The frequency profile in use, ``(num_heads, max_sequence_length)``."""
        return self.scale if self.scale is not None else self.fixed_scale

    mixing_path: MixingPath = "auto"

    def chosen_path(self, n: int, device: torch.device) -> str:
        """``gemm``, ``folded``, ``factored``, ``dense`` or ``fast`` for ``n`` on ``device``.

        An explicit ``mixing_path`` is taken as set, except that causal layers given
        ``factored`` take ``fast`` (the factored filter is not causal).

        ``auto`` on CUDA: non-causal filters whose kinds all have a closed-form matrix
        (dct, dst, hadamard) take ``gemm`` (:meth:`mix_gemm`: two tensor-core GEMMs with the
        shared transform matrix, ``4 N F B H d`` multiply-adds forward) for
        ``n <= GEMM_MAX_LENGTH`` (``folded`` at odd ``n`` when a group is DCT or DST,
        :data:`FOLD_ODD_LENGTHS`); others take the
        dense operator (:meth:`dense_operator`) for
        ``n <= DENSE_MAX_LENGTH``; the transforms (``fast``) otherwise, and always on the CPU.
        Non-causal filters whose kinds all appear in :data:`FACTORED_MIN_LENGTH` take
        ``factored`` (:meth:`mix_factored`) first from the largest of their lengths on, when
        the heads span at least :data:`FACTORED_MIN_WIDTH` channels.
        """
        if self.mixing_path == "factored" and self.causal:
            return "fast"
        if self.mixing_path != "auto":
            return self.mixing_path
        if device.type != "cuda":
            return "fast"
        # No set or dict-view comparisons: torch.compile traces this method on every forward,
        # and older Dynamo releases (torch 2.11) break the graph on them.
        thresholds = [FACTORED_MIN_LENGTH.get(kind) for kind, _, _, _ in self.groups]
        wide = self.num_heads * self.head_dim >= FACTORED_MIN_WIDTH
        if not self.causal and wide and thresholds and None not in thresholds:
            if n >= max(thresholds):
                return "factored"
        matrix_kinds = all(kind in MATRIX_KINDS for kind, _, _, _ in self.groups)
        if not self.causal and matrix_kinds and n <= GEMM_MAX_LENGTH:
            foldable = any(kind in FOLD_KINDS for kind, _, _, _ in self.groups)
            return "folded" if FOLD_ODD_LENGTHS and foldable and n % 2 == 1 else "gemm"
        return "dense" if n <= DENSE_MAX_LENGTH else "fast"

    def dense_operator(self, n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        r"""The mixing operator as one matrix per head, ``(H, N, N)``.

        Non-causal: :math:`M = T^{-1}\,\mathrm{diag}(\Lambda)\,T`, formed by the fast
        filter applied to the columns of the identity (so it is the same operator as the fast
        path, differentiable in :math:`\Lambda`). Causal: the lower-triangular Toeplitz
        matrix :math:`M_{ij} = h_{i-j}` (:math:`i \ge j`) of the impulse response.
        """
        profile = self.profile.to(dtype)  # (H, L)
        if self.causal:
            taps = self._taps(profile, n)  # (H, N)
            lag = torch.arange(n, device=device)[:, None] - torch.arange(n, device=device)
            return taps[:, lag.clamp(min=0)] * (lag >= 0).to(dtype)  # (H, N, N)
        eye = torch.eye(n, dtype=dtype, device=device)[None, None]  # (1, 1, N, N)
        blocks = [
            spectral_filter(
                eye.expand(1, e - s, n, n),
                coefficient_gains(profile[s:e], kind, n),
                self.transforms[t],
                kind,
            )[0]
            for kind, s, e, t in self.groups
        ]  # each (H_g, N, N): column j is M e_j
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks)

    def mix_dense(self, u: Tensor) -> Tensor:
        """``M u`` as one batched GEMM per head: (H, N, N) @ (H, N, B*d), in ``u``'s dtype."""
        batch, heads, n, d = u.shape
        op = self.dense_operator(n, compute_dtype(u), u.device).to(u.dtype)  # (H, N, N)
        cols = u.permute(1, 2, 0, 3).reshape(heads, n, batch * d)  # (H, N, B*d)
        return (op @ cols).view(heads, n, batch, d).permute(2, 0, 1, 3)  # (B, H, N, d)

    def _taps(self, profile: Tensor, n: int) -> Tensor:
        """Causal impulse response of every head, ``(H, n)``."""
        return torch.cat(
            [
                impulse_response(profile[s:e], kind, self.transforms[t], n)
                for kind, s, e, t in self.groups
            ]
        )

    def _filter_groups(self, u: Tensor, profile: Tensor, matrices: str | None) -> Tensor:
        """``M u`` per head group; closed-form kinds use ``matrices`` when given.

        ``matrices``: ``"gemm"`` (:func:`matrix_filter`), ``"folded"`` (:func:`folded_filter`
        for dct and dst, :func:`matrix_filter` for hadamard), ``"factored"``
        (:func:`factored_filter`) or None (the transforms for every kind).
        """
        n = u.shape[-2]
        outs = []
        for kind, s, e, t in self.groups:
            gains = coefficient_gains(profile[s:e], kind, n)  # (H_g, F)
            if matrices == "folded" and kind in FOLD_KINDS:
                outs.append(folded_filter(u[:, s:e], gains, kind))  # (B, H_g, N, d)
            elif matrices in ("gemm", "folded") and kind in MATRIX_KINDS:
                outs.append(matrix_filter(u[:, s:e], gains, kind))  # (B, H_g, N, d)
            elif matrices == "factored" and kind in MATRIX_KINDS:
                outs.append(factored_filter(u[:, s:e], gains, kind))  # (B, H_g, N, d)
            else:
                outs.append(spectral_filter(u[:, s:e], gains, self.transforms[t], kind))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)

    def mix_gemm(self, u: Tensor) -> Tensor:
        r"""``M u`` with :math:`M = A^T \mathrm{diag}(\Lambda) A` as two GEMMs per head group.

        Groups of a closed-form kind use :func:`matrix_filter` (the transform matrix ``A``
        shared by every head and batch item, in ``u``'s dtype); other groups use their
        transforms, and causal layers are computed as on the ``dense`` path.
        """
        if self.causal:
            return self.mix_dense(u)
        return self._filter_groups(u, self.profile.to(u.dtype), matrices="gemm")

    def mix_folded(self, u: Tensor) -> Tensor:
        r"""``M u`` as :meth:`mix_gemm`, the DCT and DST groups by :func:`folded_filter`.

        :math:`A_{k, N-1-j} = (-1)^k A_{kj}` splits each of the two GEMMs into two of half the
        size on the folded signal :math:`u_j \pm u_{N-1-j}`; Hadamard groups keep the full
        matrix, causal layers are computed as on the ``dense`` path.
        """
        if self.causal:
            return self.mix_dense(u)
        return self._filter_groups(u, self.profile.to(u.dtype), matrices="folded")

    def mix_factored(self, u: Tensor) -> Tensor:
        r"""``M u`` with the transforms factored into small GEMMs (:func:`factored_filter`).

        Closed-form kinds: Hadamard as :math:`H_a \otimes H_b`, DCT-II / DST-II by the
        four-step DFT, ``O(N (N_1 + N_2))`` with :math:`N_1 N_2 = N`, in ``u``'s dtype; other
        groups use their transforms. Non-causal only (:meth:`chosen_path` sends causal
        layers to ``fast``).
        """
        if self.causal:
            return self.mix(u)
        return self._filter_groups(u, self.profile.to(u.dtype), matrices="factored")

    def mix(self, u: Tensor) -> Tensor:
        """Token mixing ``M u`` (or the causal convolution) of ``u`` (B, H, N, d)."""
        profile = self.profile.to(compute_dtype(u))  # (H, L)
        if self.causal:
            taps = self._taps(profile, u.shape[-2])  # (H, N)
            return causal_filter(u.to(profile.dtype), taps)  # (B, H, N, d)
        return self._filter_groups(u, profile, matrices=None)

    def mix_path(self, u: Tensor, path: str) -> Tensor:
        """``M u`` on ``path`` (``gemm``, ``folded``, ``factored``, ``dense`` or ``fast``).

        The gates run in the projections' dtype (bfloat16 under autocast); only the FFT-based
        transforms of the fast path take half-precision input to float32 (cuFFT has no
        bfloat16; :meth:`mix` returns float32), and their output comes back before the query
        gate, so fewer and narrower tensors are kept for the backward than with float32 gates.
        The DCT and DST filters keep their half-precision input for the backward.
        """
        mix = {
            "gemm": self.mix_gemm,
            "folded": self.mix_folded,
            "factored": self.mix_factored,
            "dense": self.mix_dense,
            "fast": self.mix,
        }[path]
        return mix(u)  # (B, H, N, d)

    def gated_mix(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, path: str) -> Tensor:
        """``sigmoid(q) * M(sigmoid(k) * v * mask)``, ``(B, H, N, d)`` in q's dtype.

        Padded samples enter the filter as zeros.
        """
        return torch.sigmoid(q) * self.mixed_values(k, v, mask, path)  # (B, H, N, d)

    def mixed_values(self, k: Tensor, v: Tensor, mask: Tensor | None, path: str) -> Tensor:
        """``M(sigmoid(k) * v * mask)``, ``(B, H, N, d)`` in the gates' dtype."""
        u = masked(torch.sigmoid(k) * v, mask)  # (B, H, N, d)
        return self.mix_path(u, path).to(u.dtype)  # (B, H, N, d)

    recompute_mixing: bool | None = None
    """Whether the backward rebuilds the gated mixing from q, k and v
    (:mod:`spectrans.layers.attention.lst_recompute`) instead of keeping its intermediates:
    True, False, or None for the default (keep:
    :data:`~spectrans.layers.attention.chunked_recompute.RECOMPUTE_DEFAULT`). It keeps about
    three ``(B, N, H d)`` tensors fewer per layer for one more filter application in the
    backward. ``python -m experiments.peak_memory`` (``results/peak_memory_cpu.md``: one
    layer's forward and backward tracked tensor by tensor, bf16 autocast, batch 8, width 256,
    4 heads, N = 1024-8192) puts the DCT, DST, Hadamard and mixed layers at 1.16x the softmax
    layer's peak on the FFT path with autograd's backward and at 1.00x with the recomputing
    one; Hadamard on ``factored`` from 1.11x to 1.00x; on ``gemm`` the cached ``N x N``
    transform matrix stays (DCT 1.13-1.22x -> 1.03-1.11x). Never inside compiled code, where
    the compiler's partitioner chooses what to keep."""

    def recomputes(self, q: Tensor, k: Tensor, v: Tensor) -> bool:
        """Whether this forward takes :func:`recompute_gated_mix` (on any mixing path).

        See :attr:`recompute_mixing`; besides, autograd must be recording, the transforms
        must have no trainable parameters, and the code must not be being compiled.
        """
        tracked = q.requires_grad or k.requires_grad or v.requires_grad
        if not wants_recompute(self.recompute_mixing, tracked):
            return False
        return not any(p.requires_grad for p in self.transforms.parameters())

    def forward(
        self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, None]:
        """Gated spectral-filter attention.

        Args:
            x: ``(B, N, D)``.
            mask: ``(B, N)`` bool, True on real tokens.
            return_attention: Also return None (no score matrix is formed).

        Returns:
            ``(B, N, D)``, or ``(out, None)``.
        """
        mask = check_input(x, mask, self.hidden_dim)
        q, k, v = project_qkv(self, x)  # (B, H, N, d)
        path = self.chosen_path(x.shape[1], x.device)
        if self.recomputes(q, k, v):
            y = recompute_gated_mix(self, q, k, v, mask, path)  # (B, H, N, d)
            out = self.out_proj(self.dropout(merge_heads(y)))  # (B, N, D)
        else:  # the query gate, dropout and out_proj keep q and the mixed values only
            mixed = self.mixed_values(k, v, mask, path)  # (B, H, N, d)
            out = gated_out_projection(q, mixed, self.out_proj, self.dropout)  # (B, N, D)
        out = zero_masked(out, mask)  # (B, N, D)
        return (out, None) if return_attention else out


@register_mixer(
    "lst",
    LSTAttentionConfig,
    family="attention",
    complexity="O(n log n)",
    description="linear spectral transform attention",
    paper="Lee-Thorp et al. 2022 (FNet); spectrans LST",
)
class LSTAttention(_LSTFilterAttention):
    """Linear Spectral Transform attention (see the module docstring for the math).

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads H.
        transform_type: ``dct`` (DCT-II), ``dst`` (DST-II), ``hadamard`` (Walsh-Hadamard,
            zero-padded to a power of two), ``wavelet`` (orthonormal periodic db4 DWT, 3 levels,
            zero-padded to a multiple of 8) or ``mixed`` (heads split over dct, dst, hadamard
            in contiguous blocks, as evenly as possible).
        learnable_scale: Learn the frequency profile ``scale`` (else a fixed buffer).
        normalize: Orthonormal transforms (rounding only; ``M`` is the same).
        dropout: Dropout on the mixed values before ``out_proj``.
        use_bias: Biases in the projections.
        head_dim: Per-head width; None means ``hidden_dim // num_heads``.
        causal: Causal convolution by the filter's impulse response.
        use_rope: Rotate q and k by RoPE before the gates.
        qk_norm: LayerNorm on q and k per head.
        init_weights: Projection init mode.
        max_sequence_length: Number of profile samples ``L`` per head.

    Attributes:
        head_dim: Width per head.
        transform_type: The transform type.
        transforms: ``nn.ModuleList`` of transforms, one per head if mixed, else one.
        scale: ``nn.Parameter`` ``(num_heads, max_sequence_length)`` or None.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 8,
        transform_type: TransformType = "dct",
        learnable_scale: bool = True,
        normalize: bool = True,
        dropout: float = 0.0,
        use_bias: bool = True,
        head_dim: int | None = None,
        causal: bool = False,
        use_rope: bool = False,
        qk_norm: bool = False,
        init_weights: str = "truncnormal002",
        max_sequence_length: int = 1024,
    ) -> None:
        super().__init__(
            head_kinds=self._head_kinds(transform_type, num_heads),
            learnable_scale=learnable_scale,
            normalized=normalize,
            bias=use_bias,
            **pick_args(locals(), _LST_LAYER_ARGS),
        )
        self.transform_type = transform_type

    def _head_kinds(self, transform_type: str, num_heads: int) -> list[str]:
        """The filter kind of each head for ``transform_type``."""
        if transform_type == "mixed":
            return split_heads_evenly(num_heads, list(_MIXED_LST_KINDS))
        if transform_type in (*_MIXED_LST_KINDS, "wavelet"):
            return [transform_type] * num_heads
        raise ValueError(
            f"transform_type={transform_type!r} is not supported; use 'dct', "
            "'dst', 'hadamard', 'wavelet' or 'mixed'"
        )


@register_mixer(
    "dct",
    DCTAttentionConfig,
    family="attention",
    complexity="O(n log n)",
    description="LST attention with the DCT",
    paper="Ahmed et al. 1974 (DCT); spectrans LST",
)
class DCTAttention(LSTAttention):
    """LST attention with a DCT on every head.

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads.
        dct_type: 2 (forward DCT-II, inverse DCT-III) or 3 (forward DCT-III, inverse DCT-II).
        learnable_scale: Learn the frequency profile.
        dropout: Dropout probability.
        bias: Biases in the projections.
        head_dim, causal, use_rope, qk_norm, init_weights, max_sequence_length: As
            :class:`LSTAttention`.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 8,
        dct_type: int = 2,
        learnable_scale: bool = True,
        dropout: float = 0.0,
        bias: bool = True,
        head_dim: int | None = None,
        causal: bool = False,
        use_rope: bool = False,
        qk_norm: bool = False,
        init_weights: str = "truncnormal002",
        max_sequence_length: int = 1024,
    ) -> None:
        if dct_type not in (2, 3):
            raise ValueError(f"dct_type={dct_type!r} is not supported; use 2 or 3")
        self.dct_type = dct_type  # read by _head_kinds during super().__init__
        super().__init__(
            transform_type="dct",
            learnable_scale=learnable_scale,
            normalize=True,
            use_bias=bias,
            **pick_args(locals(), _LST_LAYER_ARGS),
        )

    def _head_kinds(self, transform_type: str, num_heads: int) -> list[str]:
        """DCT-II heads, or DCT-III heads when ``dct_type == 3``."""
        return ["dct" if self.dct_type == 2 else "dct3"] * num_heads


@register_mixer(
    "hadamard",
    HadamardAttentionConfig,
    family="attention",
    complexity="O(n log n)",
    description="LST attention with the Walsh-Hadamard transform",
    paper="Fino & Algazi 1976 (FWHT); spectrans LST",
)
class HadamardAttention(LSTAttention):
    """LST attention with the Walsh-Hadamard transform on every head.

    The sequence is zero-padded to the next power of two, filtered over sequency, and cropped.

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads.
        scale_by_sqrt: Orthonormal transform (divide by sqrt(P)); rounding only.
        learnable_scale: Learn the sequency profile.
        dropout: Dropout probability.
        bias: Biases in the projections.
        head_dim, causal, use_rope, qk_norm, init_weights, max_sequence_length: As
            :class:`LSTAttention`.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 8,
        scale_by_sqrt: bool = True,
        learnable_scale: bool = True,
        dropout: float = 0.0,
        bias: bool = True,
        head_dim: int | None = None,
        causal: bool = False,
        use_rope: bool = False,
        qk_norm: bool = False,
        init_weights: str = "truncnormal002",
        max_sequence_length: int = 1024,
    ) -> None:
        super().__init__(
            transform_type="hadamard",
            learnable_scale=learnable_scale,
            normalize=scale_by_sqrt,
            use_bias=bias,
            **pick_args(locals(), _LST_LAYER_ARGS),
        )


@register_mixer(
    "mixed",
    MixedTransformAttentionConfig,
    family="attention",
    complexity="O(n log n)",
    description="FFT/DCT/FWHT heads",
    paper="spectrans mixed-transform attention",
)
class MixedSpectralAttention(_LSTFilterAttention):
    """Spectral-filter attention with FFT, DCT and Hadamard heads (same math per head).

    Heads are split over the enabled transforms (order fft, dct, hadamard) in contiguous
    blocks as evenly as possible; heads of one transform are computed in one batched call.
    The default ``num_heads`` is 8, not the documented 9 (9 does not divide the default
    ``hidden_dim`` 512); any count works, 8 splits 3/3/2.
    FFT heads use real gains over rFFT bins (a symmetric circular convolution).

    Args:
        hidden_dim: Model width D.
        num_heads: Number of heads.
        use_fft: Include FFT heads.
        use_dct: Include DCT heads.
        use_hadamard: Include Hadamard heads.
        dropout: Dropout probability.
        bias: Biases in the projections.
        head_dim, causal, use_rope, qk_norm, init_weights, max_sequence_length: As
            :class:`LSTAttention`.
    """

    def __init__(
        self,
        hidden_dim: int,
        num_heads: int = 8,
        use_fft: bool = True,
        use_dct: bool = True,
        use_hadamard: bool = True,
        dropout: float = 0.0,
        bias: bool = True,
        head_dim: int | None = None,
        causal: bool = False,
        use_rope: bool = False,
        qk_norm: bool = False,
        init_weights: str = "truncnormal002",
        max_sequence_length: int = 1024,
    ) -> None:
        enabled = [
            k for k, on in (("fft", use_fft), ("dct", use_dct), ("hadamard", use_hadamard)) if on
        ]
        if not enabled:
            raise ValueError(
                "MixedSpectralAttention needs at least one of use_fft, use_dct, "
                "use_hadamard set to True"
            )
        super().__init__(
            head_kinds=split_heads_evenly(num_heads, enabled),
            learnable_scale=True,
            normalized=True,
            bias=bias,
            **pick_args(locals(), _LST_LAYER_ARGS),
        )
        self.transform_type = "mixed"
