"""Kernel functions: exact Gram matrices (the test oracles) and their feature maps.

Exact kernels, each ``(..., N, d), (..., M, d) -> (..., N, M)``:

- Gaussian: ``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))``;
- polynomial: ``k(x, y) = (x.y / s + c)^p``;
- softmax: ``k(x, y) = exp(x.y / sqrt(d))``.

Feature maps (``k(x, y) ~= phi(x).phi(y)``):

- :class:`PolynomialKernel`: random Maclaurin features (Kar and Karnick, 2012). With
  ``x~ = [x / sqrt(s), sqrt(c)]`` and independent ``W_1 .. W_p ~ N(0, I)^{r x (d+1)}``,
  ``phi(x) = prod_l (W_l x~) / sqrt(r)`` is a rank-``r`` unbiased estimate of
  ``(x~.y~)^p`` because ``E[(w.x~)(w.y~)] = x~.y~`` for each independent factor.
- :class:`LearnableSpectralKernel`: a stationary kernel with a learned spectral measure,
  ``k(x, y) = mean_i cos(w_i.(x - y))`` with learnable frequencies ``w_i`` (Bochner), features
  ``[cos(W x), sin(W x)] / sqrt(r)`` (exact for its own kernel).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from spectrans.kernels.orthogonal import gaussian_projection
from spectrans.kernels.rff import FeatureMap, RandomFeatureMap, trig_features


def gaussian_kernel(x: Tensor, y: Tensor, sigma: float = 1.0) -> Tensor:
    """``exp(-|x_i - y_j|^2 / (2 sigma^2))``: (..., N, d), (..., M, d) -> (..., N, M)."""
    sq_dist = (
        (x**2).sum(-1)[..., :, None] + (y**2).sum(-1)[..., None, :] - 2 * x @ y.transpose(-1, -2)
    )  # (..., N, M)
    return torch.exp(-sq_dist.clamp_min(0) / (2 * sigma**2))


def polynomial_kernel(
    x: Tensor, y: Tensor, degree: int = 2, coef0: float = 1.0, scale: float = 1.0
) -> Tensor:
    """``(x_i.y_j / scale + coef0)^degree``: (..., N, d), (..., M, d) -> (..., N, M)."""
    return (x @ y.transpose(-1, -2) / scale + coef0) ** degree


def polynomial_features(
    x: Tensor, projections: Tensor, coef0: float = 1.0, scale: float = 1.0
) -> Tensor:
    """Random Maclaurin features of ``(x.y / scale + coef0)^p``.

    Args:
        x: ``(..., d)``.
        projections: ``(p, r, d + 1)`` independent Gaussian matrices ``W_l``.
        coef0: Constant ``c >= 0``.
        scale: Divisor ``s > 0`` of the inner product.

    Returns:
        ``(..., r)`` signed features ``prod_l (W_l x~) / sqrt(r)``.
    """
    ones = torch.full_like(x[..., :1], math.sqrt(coef0))  # (..., 1)
    x_aug = torch.cat((x / math.sqrt(scale), ones), dim=-1)  # (..., d+1)
    factors = torch.einsum("...k,prk->p...r", x_aug, projections.to(x.dtype))  # (p, ..., r)
    return factors.prod(dim=0) / math.sqrt(projections.shape[1])  # (..., r)


class KernelFunction(FeatureMap):
    """A kernel with a feature map whose parameters are learned or deterministic."""


class PolynomialKernel(RandomFeatureMap):
    """Rank-``r`` random-projection features of ``(x.y / sqrt(d) + coef0)^degree``.

    The ``degree`` factor matrices are stored in one buffer ``projection`` of shape
    ``(degree * r, d + 1)`` with i.i.d. Gaussian rows (orthogonal blocks would correlate the
    factors and bias the product).

    Args:
        input_dim: Input width d.
        rank: Number of features r.
        degree: Polynomial degree p >= 1.
        coef0: Constant c >= 0.
        **kwargs: ``feature_redraw``, ``redraw_interval``.
    """

    def __init__(
        self,
        input_dim: int,
        rank: int,
        *,
        degree: int = 2,
        coef0: float = 1.0,
        **kwargs: bool | int,
    ) -> None:
        if degree < 1 or coef0 < 0:
            raise ValueError(f"need degree >= 1 and coef0 >= 0, got degree={degree}, coef0={coef0}")
        self.degree, self.coef0 = degree, coef0
        super().__init__(input_dim, rank, num_rows=degree * rank, orthogonal=False, **kwargs)  # type: ignore[arg-type]

    def draw_projection(self, device: torch.device | None = None) -> Tensor:
        """``(p * r, d + 1)`` i.i.d. Gaussian rows."""
        return torch.randn(self.num_rows, self.input_dim + 1, device=device)

    def forward(self, x: Tensor, *, is_query: bool = True, mask: Tensor | None = None) -> Tensor:
        """Features ``(..., N, d) -> (..., N, r)``."""
        projections = self.snapshot(self.projection).view(
            self.degree, self.num_features, -1
        )  # (p, r, d+1)
        return polynomial_features(x, projections, self.coef0, math.sqrt(self.input_dim))

    def exact(self, x: Tensor, y: Tensor) -> Tensor:
        """``(x_i.y_j / sqrt(d) + coef0)^degree``."""
        return polynomial_kernel(x, y, self.degree, self.coef0, math.sqrt(self.input_dim))


class LearnableSpectralKernel(KernelFunction):
    """Stationary kernel with learnable frequencies: ``k(x, y) = mean_i cos(w_i.(x' - y'))``.

    ``x' = x d^{-1/4}``; the frequencies start as a block-orthogonal Gaussian draw (so the
    kernel starts as a random-feature estimate of ``exp(-|x' - y'|^2 / 2)``) and are trained.

    Args:
        input_dim: Input width d.
        num_features: Number of frequencies r (``feature_dim = 2r``).
    """

    signed: ClassVar[bool] = True

    def __init__(self, input_dim: int, num_features: int) -> None:
        super().__init__()
        self.input_dim, self.num_features = input_dim, num_features
        self.feature_dim = 2 * num_features
        self.frequencies = nn.Parameter(gaussian_projection(num_features, input_dim))  # (r, d)

    def forward(self, x: Tensor, *, is_query: bool = True, mask: Tensor | None = None) -> Tensor:
        """Features ``(..., N, d) -> (..., N, 2r)``."""
        return trig_features(x * self.input_dim**-0.25, self.frequencies)

    def exact(self, x: Tensor, y: Tensor) -> Tensor:
        """``mean_i cos(w_i.(x'_a - y'_b))``, (..., N, d), (..., M, d) -> (..., N, M)."""
        scale = self.input_dim**-0.25
        diff = (x[..., :, None, :] - y[..., None, :, :]) * scale  # (..., N, M, d)
        return torch.cos(diff @ self.frequencies.T).mean(dim=-1)  # (..., N, M)
