"""FAVOR+ positive random features of the softmax kernel (Choromanski et al., 2021).

With ``x' = x d^{-1/4}`` and ``w ~ N(0, I_d)``:

    exp(q'.k') = E_w[exp(w.q' - |q'|^2 / 2) exp(w.k' - |k'|^2 / 2)],

so ``phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(m)`` is a positive, unbiased feature map of
``exp(q.k / sqrt(d))``. Positive features keep every attention normaliser positive.

Stabilisation (exact, it cancels in the attention ratio
``phi(q_i).sum_j phi(k_j) v_j / phi(q_i).sum_j phi(k_j)``):

- queries: divide each row by the sum of its features, i.e. ``softmax(W x')`` (a per-query
  constant; the row's largest feature is then at least ``1/m``, so no row underflows);
- keys: divide by a power of two ``2^E`` near the max over all features of all unmasked keys
  of a head (one constant per (batch, head)), so the key features of one head share one scale;
  being a power of two, it rescales each key exactly, so masked or future keys cannot perturb
  the features of the others even by rounding (:func:`~spectrans.kernels.rff.scale_keys_exactly`).

The attention layers take the key features in factored form (:func:`favor_factors`): a
bounded ``(N, m)`` factor ``exp(W x' - max_i (W x')_i)`` and a per-key ``(N, 1)`` factor
carrying the rest, which the attention multiplies into the values, so no pass over an
``(N, m)`` tensor is spent on the per-head stabiliser. Stabilisers are data-dependent: a fixed
one (``max_i |w_i|^2 / 2``, the completing-the-square bound of ``w.x' - |x'|^2 / 2``) never
overflows but underflows every feature of keys far from all frequencies (see
:func:`favor_factors`).

The generalized (LRA) Performer replaces the estimate by the deterministic kernel
``phi(x) = relu(x) + eps``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from spectrans.kernels.rff import FeatureMap, SoftmaxRandomFeatures, scale_keys_exactly


def favor_factors(
    x: Tensor, projection: Tensor, *, is_query: bool, mask: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """FAVOR+ features as ``base * scale``: a bounded ``(..., N, m)`` factor and a per-row one.

    With ``L = W x'`` (``x' = x d^{-1/4}``) and ``r = max_i L_i`` (one row's own maximum),
    for keys

        base  = exp(L - r)                              (..., N, m), in (0, 1], max exactly 1
        scale = exp(r - |x'|^2 / 2 - E ln 2)            (..., N, 1)

    so ``base * scale = exp(W x' - |x'|^2 / 2 - E ln 2)``: the FAVOR+ features times the
    per-head constant ``2^{-E}`` (``E`` from the unmasked keys, see
    :func:`~spectrans.kernels.rff.scale_keys_exactly`), which cancels in the attention ratio.
    For queries every per-row constant cancels (``|x'|^2 / 2``, ``r``, ``1 / sqrt(m)``, the
    row sum), so ``base = softmax(L)`` (one fused kernel; entries in (0, 1], largest
    ``>= 1/m``) and ``scale`` is ``None``.

    Range: ``base <= 1`` never overflows and no row of it underflows as a whole; ``scale <= 2``
    underflows (to 0) only for keys whose largest feature is ``2^-126`` (float32/bfloat16)
    times smaller than the largest key's of the head. ``r`` reads only its own row, so it fuses
    into the kernel that forms ``exp`` under ``torch.compile``; the per-head part reduces an
    ``(N,)`` vector. A data-independent stabiliser (``r`` replaced by ``max_i |w_i|^2 / 2``,
    which bounds ``w_i.x' - |x'|^2 / 2`` by completing the square:
    ``w.x' - |x'|^2 / 2 = |w|^2 / 2 - |x' - w|^2 / 2``) would underflow every feature of a key
    once ``min_i |x' - w_i|^2 / 2`` exceeds ~87 plus the gap to the bound (e.g. ``|k| = 40``
    at d = 8, a case the tests check), so the row maximum is kept.

    ``r`` and ``E`` are constants for autograd (they cancel in the ratio), so gradients are
    those of the unstabilised ratio.

    Args:
        x: ``(..., N, d)`` queries or keys (the dtype the features are computed in).
        projection: ``(m, d)`` Gaussian (ideally block-orthogonal) frequencies.
        is_query: Queries (no ``scale``) or keys.
        mask: broadcastable to ``x.shape[:-1]``, True on real keys; masked keys do not enter
            ``E``. Ignored for queries.

    Returns:
        ``base`` ``(..., N, m)`` and ``scale`` ``(..., N, 1)`` float32 or float64 (keys) or
        ``None`` (queries).
    """
    x = x * x.shape[-1] ** -0.25  # (..., N, d)
    logits = x @ projection.to(x.dtype).T  # (..., N, m)
    if is_query:
        return torch.softmax(logits, dim=-1), None  # (..., N, m)
    peak = logits.amax(dim=-1, keepdim=True).detach()  # (..., N, 1)
    base = torch.exp(logits - peak)  # (..., N, m)
    wide = torch.promote_types(x.dtype, torch.float32)
    x_wide = x.to(wide)  # (..., N, d)
    log_peak = peak.to(wide) - 0.5 * (x_wide * x_wide).sum(-1, keepdim=True)  # (..., N, 1)
    return base, scale_keys_exactly(log_peak, log_peak, mask)  # (..., N, 1)


def positive_softmax_features(
    x: Tensor,
    projection: Tensor,
    *,
    is_query: bool,
    mask: Tensor | None = None,
    stabilise: bool = True,
) -> Tensor:
    """FAVOR+ features ``exp(W x' - |x'|^2 / 2 - c) / sqrt(m)``, ``x' = x d^{-1/4}``.

    Args:
        x: ``(..., N, d)`` queries or keys.
        projection: ``(m, d)`` Gaussian (ideally block-orthogonal) frequencies.
        is_query: Stabiliser ``c`` per row (queries) or per head over unmasked keys (keys);
            see :func:`favor_factors` for both.
        mask: broadcastable to ``x.shape[:-1]``, True on real tokens; masked keys do not
            enter the key stabiliser. Ignored for queries.
        stabilise: Subtract ``c`` (off: the raw unbiased estimator, ``c = 0``).

    Returns:
        ``(..., N, m)`` positive features.
    """
    scale = 1.0 / math.sqrt(projection.shape[0])
    if not stabilise:
        x = x * x.shape[-1] ** -0.25  # (..., N, d)
        logits = x @ projection.to(x.dtype).T - 0.5 * (x**2).sum(-1, keepdim=True)
        return logits.exp() * scale  # (..., N, m)
    base, key_scale = favor_factors(x, projection, is_query=is_query, mask=mask)
    if key_scale is not None:
        base = base * key_scale.to(base.dtype)  # (..., N, m)
    return base * scale


def relu_features(x: Tensor, eps: float = 1e-3) -> Tensor:
    """Deterministic generalized-attention features ``relu(x) + eps``: (..., d) -> (..., d)."""
    return torch.relu(x) + eps


class PositiveRandomFeatures(SoftmaxRandomFeatures):
    """FAVOR+ feature map (see :func:`positive_softmax_features`), ``feature_dim = m``.

    Args:
        input_dim: Head width d.
        num_features: Number of random features m.
        **kwargs: ``orthogonal``, ``feature_redraw``, ``redraw_interval``.
    """

    signed: ClassVar[bool] = False
    features = staticmethod(positive_softmax_features)

    def factored(
        self, x: Tensor, *, is_query: bool = True, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``(base, scale)`` of :func:`favor_factors` (features up to a cancelling constant)."""
        return favor_factors(x, self.snapshot(self.projection), is_query=is_query, mask=mask)


class ReLUFeatures(FeatureMap):
    """Deterministic ReLU features ``relu(x) + eps`` (the LRA generalized Performer).

    The kernel is ``k(q, k) = (relu(q) + eps).(relu(k) + eps)``; ``feature_dim = d``.
    """

    signed: ClassVar[bool] = False

    def __init__(self, input_dim: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.input_dim, self.eps, self.feature_dim = input_dim, eps, input_dim

    def forward(self, x: Tensor, *, is_query: bool = True, mask: Tensor | None = None) -> Tensor:
        """Features ``(..., N, d) -> (..., N, d)``."""
        return relu_features(x, self.eps)

    def exact(self, x: Tensor, y: Tensor) -> Tensor:
        """``(relu(x_i) + eps).(relu(y_j) + eps)``."""
        return self(x) @ self(y).transpose(-1, -2)
