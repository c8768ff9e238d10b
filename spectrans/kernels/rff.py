"""Random Fourier features (Rahimi and Recht, 2007) and the feature-map base classes.

Bochner: a shift-invariant kernel is the Fourier transform of a probability measure, and for
the Gaussian kernel ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))`` that measure is ``N(0, I/sigma^2)``:

    k(x, y) = E_w[cos(w.(x - y))],  w ~ N(0, I_d / sigma^2).

With ``m`` frequencies ``W`` (m, d) two unbiased feature maps follow:

- pairs: ``phi(x) = [cos(W x), sin(W x)] / sqrt(m)`` (2m features), since
  ``cos a cos b + sin a sin b = cos(a - b)``;
- offsets: ``phi(x) = sqrt(2/m) cos(W x + b)``, ``b ~ U[0, 2 pi)`` (m features).

Both give ``E[phi(x).phi(y)] = k(x, y)``; the pairs have lower variance. Trigonometric features
are signed, so estimated attention normalisers can be negative (see
:mod:`spectrans.layers.attention.linear`).

The softmax kernel factors through the Gaussian one (with ``x' = x d^{-1/4}``):

    exp(q.k / sqrt(d)) = exp(|q'|^2 / 2) exp(|k'|^2 / 2) exp(-|q' - k'|^2 / 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from spectrans.kernels.orthogonal import gaussian_projection


def trig_features(x: Tensor, projection: Tensor) -> Tensor:
    """Paired features ``[cos(x W^T), sin(x W^T)] / sqrt(m)``.

    Args:
        x: ``(..., d)`` inputs.
        projection: ``(m, d)`` frequencies ``W``.

    Returns:
        ``(..., 2m)`` features with ``phi(x).phi(y) = mean_i cos(w_i.(x - y))``.
    """
    angles = x @ projection.to(x.dtype).T  # (..., m)
    scale = 1.0 / math.sqrt(projection.shape[0])
    return torch.cat((angles.cos(), angles.sin()), dim=-1) * scale  # (..., 2m)


def offset_trig_features(x: Tensor, projection: Tensor, offset: Tensor) -> Tensor:
    """Rahimi-Recht features ``sqrt(2/m) cos(x W^T + b)``: (..., d) -> (..., m)."""
    angles = x @ projection.to(x.dtype).T + offset.to(x.dtype)  # (..., m)
    return angles.cos() * math.sqrt(2.0 / projection.shape[0])  # (..., m)


def masked_max(values: Tensor, mask: Tensor | None, dim: int) -> Tensor:
    """Max of ``values`` over ``dim`` and the last dim, ignoring positions where mask is False.

    Args:
        values: ``(..., N, k)``.
        mask: broadcastable to ``values.shape[:-1]`` (True = keep) or None.
        dim: the sequence dimension (``-2``).

    Returns:
        ``(..., 1, 1)``; 0 where every position is masked (so nothing becomes NaN).
    """
    if mask is not None:
        values = values.masked_fill(~mask[..., None], float("-inf"))
    peak = values.amax(dim=(dim, -1), keepdim=True)  # (..., 1, 1)
    return torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))


def scale_keys_exactly(logits: Tensor, row_max: Tensor, mask: Tensor | None) -> Tensor:
    """``exp(logits) / 2^E`` per head, with the shared scale applied as an exact power of two.

    Key j is written as ``exp(a_j) = g_j 2^{e_j}`` with ``e_j = floor(max_i a_{j,i} / ln 2)``
    (from key j alone) and ``g_j = exp(a_j - e_j ln 2) < 2``; then every key of a head is
    multiplied by ``2^{e_j - E}``, ``E = max_j e_j`` over unmasked keys. The common factor
    ``2^{-E}`` cancels in the attention ratio, and because it is a power of two the features of
    a key are bit-for-bit scaled copies whatever the other keys are: other (masked or future)
    keys change them only by an exact power of two (barring underflow of keys ``2^126`` times
    smaller than the largest), so masking and causality stay exact in floating point.

    Args:
        logits: ``(..., N, k)`` log-features ``a``.
        row_max: ``(..., N, 1)`` per-key maxima ``max_i a_{j,i}``.
        mask: broadcastable to ``logits.shape[:-1]``, True on real keys, or None; masked keys
            do not enter ``E`` (their features are left as they are: the attention drops them).

    Returns:
        ``(..., N, k)`` features.
    """
    exponent = torch.floor(row_max.detach() / math.log(2.0))  # (..., N, 1)
    values = torch.exp(logits - exponent * math.log(2.0))  # (..., N, k), each < 2
    shift = (exponent - masked_max(exponent, mask, dim=-2)).clamp_max(0.0)  # (..., N, 1)
    return values * torch.exp2(shift)  # exact powers of two


def trig_softmax_features(
    x: Tensor,
    projection: Tensor,
    *,
    is_query: bool,
    mask: Tensor | None = None,
    stabilise: bool = True,
) -> Tensor:
    """Trigonometric random features of the softmax kernel ``exp(q.k / sqrt(d))``.

    ``phi(x) = exp(|x'|^2 / 2) [cos(W x'), sin(W x')] / sqrt(m)`` with ``x' = x d^{-1/4}``, so
    ``E[phi(q).phi(k)] = exp(q.k / sqrt(d))``. With ``stabilise`` the factor of a query is
    dropped (a per-row constant, it cancels in the attention ratio) and the factors of the keys
    of a head are divided by (a power of two near) their maximum over the unmasked keys (a
    per-head constant, it cancels too; see :func:`scale_keys_exactly`), so nothing overflows.

    Args:
        x: ``(B, H, N, d)`` (or any ``(..., N, d)``).
        projection: ``(m, d)`` Gaussian frequencies.
        is_query: Query (per-row stabiliser) or key (per-head stabiliser).
        mask: broadcastable to ``x.shape[:-1]``, True on real tokens; masked keys do not
            enter the key stabiliser. Ignored for queries.
        stabilise: Apply the stabilisers (off: the raw unbiased estimator).

    Returns:
        ``(..., N, 2m)`` signed features.
    """
    x = x * x.shape[-1] ** -0.25  # (..., N, d)
    base = trig_features(x, projection)  # (..., N, 2m)
    log_scale = 0.5 * (x**2).sum(dim=-1, keepdim=True)  # (..., N, 1)
    if not stabilise:
        return base * log_scale.exp()
    if is_query:
        return base
    return base * scale_keys_exactly(log_scale, log_scale, mask)  # (..., N, 2m)


class FeatureMap(nn.Module):
    """A kernel feature map ``phi`` with ``k(q, k) ~= phi(q).phi(k)``.

    ``forward(x, is_query=..., mask=...)``: ``mask`` (True on real keys) only keeps masked keys
    out of stabilisers shared by the keys of a head; features at masked keys are not zeroed
    here (:func:`spectrans.layers.attention.linear.linear_attention` drops masked keys).

    Attributes:
        signed: Features can be negative, so attention normalisers can be <= 0.
        feature_dim: Width of ``phi(x)``.
    """

    signed: ClassVar[bool] = True
    feature_dim: int

    def maybe_redraw(self) -> bool | Tensor:
        """Redraw random parameters if due (see :class:`RandomFeatureMap`); here never."""
        return False

    def forward(self, x: Tensor, *, is_query: bool = True, mask: Tensor | None = None) -> Tensor:
        """Features ``(..., N, d) -> (..., N, feature_dim)``."""
        raise NotImplementedError

    def exact(self, x: Tensor, y: Tensor) -> Tensor:
        """The kernel the features estimate, ``(..., N, d), (..., M, d) -> (..., N, M)``."""
        raise NotImplementedError

    def factored(
        self, x: Tensor, *, is_query: bool = True, mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Features as ``(base, scale)``: ``phi(x) = c base * scale`` row by row.

        ``base`` is ``(..., N, feature_dim)``; ``scale`` is ``(..., N, 1)`` or ``None`` (1);
        ``c > 0`` is one constant per query row (queries) or per head over the unmasked keys
        (keys), so it cancels in the attention ratio. The attention multiplies ``scale`` into
        the values. Here ``base = phi(x)`` and ``scale = None``.
        """
        return self(x, is_query=is_query, mask=mask), None


class RandomFeatureMap(FeatureMap):
    """A feature map with a random projection kept as a buffer (saved in ``state_dict``).

    Redrawing follows performer-pytorch: only in training mode, only with ``feature_redraw``,
    and only every ``redraw_interval`` calls of :meth:`maybe_redraw` (one per layer forward).
    The count lives in the buffer ``calls_since_redraw``: the first ``redraw_interval``
    training calls use the initial projection, call ``redraw_interval + 1`` redraws, and so on.

    :meth:`maybe_redraw` is tensor code without host synchronisation, so it traces into a
    compiled graph: each training call draws a candidate projection and writes
    ``where(due, candidate, current)`` into the buffer in place (``due`` a 0-dim bool tensor),
    so the buffer keeps its address and a CUDA graph that reads it reads the new values at
    its next replay. With ``feature_redraw`` the forward reads the projection through
    :meth:`snapshot` (a copy), so the autograd graph of an earlier forward keeps the projection
    it used.

    Args:
        input_dim: Input width d.
        num_features: Number of random frequencies m.
        num_rows: Rows of the projection (default ``num_features``).
        orthogonal: Block-orthogonal rows with chi(d) norms.
        feature_redraw: Allow redrawing during training.
        redraw_interval: Training calls between redraws.
    """

    projection: Tensor
    calls_since_redraw: Tensor

    def __init__(
        self,
        input_dim: int,
        num_features: int,
        *,
        num_rows: int | None = None,
        orthogonal: bool = True,
        feature_redraw: bool = False,
        redraw_interval: int = 1000,
    ) -> None:
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"num_features must be positive, got {num_features}")
        if redraw_interval <= 0:
            raise ValueError(f"redraw_interval must be positive, got {redraw_interval}")
        self.input_dim, self.num_features = input_dim, num_features
        self.num_rows = num_rows if num_rows is not None else num_features
        self.orthogonal, self.feature_redraw = orthogonal, feature_redraw
        self.redraw_interval = redraw_interval
        self.feature_dim = num_features
        self.register_buffer("projection", self.draw_projection())  # (rows, d)
        self.register_buffer("calls_since_redraw", torch.zeros((), dtype=torch.long))

    def draw_projection(self, device: torch.device | None = None) -> Tensor:
        """A fresh ``(num_rows, input_dim)`` Gaussian projection."""
        return gaussian_projection(
            self.num_rows, self.input_dim, orthogonal=self.orthogonal, device=device
        )

    def snapshot(self, buffer: Tensor) -> Tensor:
        """``buffer`` as one forward reads it: a copy when redraws may overwrite it in place."""
        return buffer.clone() if self.feature_redraw else buffer

    def fresh_buffers(self) -> dict[str, Tensor]:
        """New draws of the random buffers, by buffer name (here the projection)."""
        return {"projection": self.draw_projection(self.projection.device)}

    @torch.no_grad()
    def maybe_redraw(self) -> bool | Tensor:
        """Count one training call; redraw when ``redraw_interval`` calls have passed.

        Returns:
            ``False`` outside training or without ``feature_redraw``; else a 0-dim bool tensor,
            whether the buffers were redrawn (read it only where a host sync is acceptable).
        """
        if not (self.training and self.feature_redraw):
            return False
        due = self.calls_since_redraw >= self.redraw_interval  # () bool
        for name, fresh in self.fresh_buffers().items():
            buffer = getattr(self, name)
            buffer.copy_(torch.where(due, fresh.to(buffer.dtype), buffer))
        self.calls_since_redraw.copy_(torch.where(due, 1, self.calls_since_redraw + 1))
        return due

    def extra_repr(self) -> str:
        """Sizes and redraw settings for ``print(module)``."""
        return (
            f"input_dim={self.input_dim}, num_features={self.num_features}, "
            f"orthogonal={self.orthogonal}, feature_redraw={self.feature_redraw}, "
            f"redraw_interval={self.redraw_interval}"
        )


class GaussianRFF(RandomFeatureMap):
    """Random Fourier features of ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))``.

    ``phi(x) = [cos(W x / sigma), sin(W x / sigma)] / sqrt(m)`` (``feature_dim = 2m``), or with
    ``use_offset`` ``sqrt(2/m) cos(W x / sigma + b)`` (``feature_dim = m``), ``W ~ N(0, I)``.

    Args:
        input_dim: Input width d.
        num_features: Number of frequencies m.
        bandwidth: Kernel width sigma.
        use_offset: Random-offset cosines instead of cos/sin pairs.
        **kwargs: ``orthogonal``, ``feature_redraw``, ``redraw_interval``.
    """

    offset: Tensor | None

    def __init__(
        self,
        input_dim: int,
        num_features: int,
        *,
        bandwidth: float = 1.0,
        use_offset: bool = False,
        **kwargs: bool | int,
    ) -> None:
        super().__init__(input_dim, num_features, **kwargs)  # type: ignore[arg-type]
        if bandwidth <= 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        self.bandwidth, self.use_offset = bandwidth, use_offset
        self.feature_dim = num_features if use_offset else 2 * num_features
        offset = torch.rand(num_features) * 2 * math.pi if use_offset else None  # (m,)
        self.register_buffer("offset", offset)

    def fresh_buffers(self) -> dict[str, Tensor]:
        """New frequencies (and offsets)."""
        fresh = super().fresh_buffers()
        if self.offset is not None:
            fresh["offset"] = torch.rand_like(self.offset) * 2 * math.pi  # (m,)
        return fresh

    def forward(self, x: Tensor, *, is_query: bool = True, mask: Tensor | None = None) -> Tensor:
        """Features of ``x`` (..., N, d) -> (..., N, feature_dim)."""
        x = x / self.bandwidth
        projection = self.snapshot(self.projection)  # (m, d)
        if self.offset is not None:
            return offset_trig_features(x, projection, self.snapshot(self.offset))  # (..., N, m)
        return trig_features(x, projection)  # (..., N, 2m)

    def exact(self, x: Tensor, y: Tensor) -> Tensor:
        """``exp(-|x_i - y_j|^2 / (2 sigma^2))``, (..., N, d), (..., M, d) -> (..., N, M)."""
        return torch.exp(-(torch.cdist(x, y) ** 2) / (2 * self.bandwidth**2))


def softmax_kernel(x: Tensor, y: Tensor) -> Tensor:
    """``exp(x_i.y_j / sqrt(d))``: (..., N, d), (..., M, d) -> (..., N, M)."""
    return torch.exp(x @ y.transpose(-1, -2) / math.sqrt(x.shape[-1]))


class SoftmaxRandomFeatures(RandomFeatureMap):
    """Random features of the softmax kernel ``exp(q.k / sqrt(d))`` by a feature function.

    Subclasses set :attr:`features`, a function ``(x, projection, *, is_query, mask,
    stabilise) -> phi(x)`` (:func:`trig_softmax_features`,
    :func:`~spectrans.kernels.favor.positive_softmax_features`).
    """

    features: ClassVar[Callable[..., Tensor]]

    def forward(
        self,
        x: Tensor,
        *,
        is_query: bool = True,
        mask: Tensor | None = None,
        stabilise: bool = True,
    ) -> Tensor:
        """Features ``(..., N, d) -> (..., N, feature_dim)``."""
        return type(self).features(
            x, self.snapshot(self.projection), is_query=is_query, mask=mask, stabilise=stabilise
        )

    def exact(self, x: Tensor, y: Tensor) -> Tensor:
        """``exp(x_i.y_j / sqrt(d))``, (..., N, d), (..., M, d) -> (..., N, M)."""
        return softmax_kernel(x, y)


class TrigSoftmaxRFF(SoftmaxRandomFeatures):
    """Trigonometric random features of the softmax kernel ``exp(q.k / sqrt(d))``.

    See :func:`trig_softmax_features`; ``feature_dim = 2m``. The features are signed, so the
    estimated normaliser of a query can be negative or near zero; the attention layers clamp
    it away from zero keeping its sign (a known weakness of trigonometric softmax estimates,
    which FAVOR+ positive features avoid).
    """

    features = staticmethod(trig_softmax_features)

    def __init__(self, input_dim: int, num_features: int, **kwargs: bool | int) -> None:
        super().__init__(input_dim, num_features, **kwargs)  # type: ignore[arg-type]
        self.feature_dim = 2 * num_features
