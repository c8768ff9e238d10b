"""FAVOR+ positive random features of the softmax kernel (Choromanski et al., 2021).

With ``x' = x d^{-1/4}`` and ``w ~ N(0, I_d)``:

    exp(q'.k') = E_w[exp(w.q' - |q'|^2 / 2) exp(w.k' - |k'|^2 / 2)],

so ``phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(m)`` is a positive, unbiased feature map of
``exp(q.k / sqrt(d))``. Positive features keep every attention normaliser positive.

Stabilisation (exact, it cancels in the attention ratio
``phi(q_i).sum_j phi(k_j) v_j / phi(q_i).sum_j phi(k_j)``):

- queries: subtract the max over the features of each row (a per-query constant);
- keys: divide by a power of two ``2^E`` near the max over all features of all unmasked keys
  of a head (one constant per (batch, head)), so the key features of one head share one scale;
  being a power of two, it rescales each key exactly, so masked or future keys cannot perturb
  the features of the others even by rounding (:func:`~spectrans.kernels.rff.scale_keys_exactly`).

The generalized (LRA) Performer replaces the estimate by the deterministic kernel
``phi(x) = relu(x) + eps``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from spectrans.kernels.rff import FeatureMap, SoftmaxRandomFeatures, scale_keys_exactly


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
        is_query: Stabiliser ``c`` per row (queries) or per head over unmasked keys (keys).
        mask: broadcastable to ``x.shape[:-1]``, True on real tokens; masked keys do not
            enter the key stabiliser. Ignored for queries.
        stabilise: Subtract ``c`` (off: the raw unbiased estimator, ``c = 0``).

    Returns:
        ``(..., N, m)`` positive features.
    """
    x = x * x.shape[-1] ** -0.25  # (..., N, d)
    logits = x @ projection.to(x.dtype).T - 0.5 * (x**2).sum(-1, keepdim=True)  # (..., N, m)
    scale = 1.0 / math.sqrt(projection.shape[0])
    if stabilise and is_query:
        return (logits - logits.amax(dim=-1, keepdim=True).detach()).exp() * scale
    if stabilise:
        row_max = logits.amax(dim=-1, keepdim=True)  # (..., N, 1)
        return scale_keys_exactly(logits, row_max, mask) * scale  # (..., N, m)
    return logits.exp() * scale  # (..., N, m)


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
