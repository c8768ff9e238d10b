"""Gaussian and block-orthogonal Gaussian projection matrices for random features.

A random-feature map draws ``m`` frequency vectors ``w_i`` in ``R^d``. Plain draws are
``w_i ~ N(0, I_d)``. Orthogonal random features (Yu et al., 2016; Choromanski et al., 2021)
make the rows orthogonal inside blocks of ``d`` rows while keeping each row's marginal law:

1. draw ``G ~ N(0, 1)^{d x d}`` and take ``Q`` from ``G = Q R`` (rows of ``Q^T`` orthonormal),
2. stack ``ceil(m / d)`` such blocks and keep the first ``m`` rows,
3. rescale row ``i`` by ``s_i ~ chi(d)`` (the norm of a fresh ``N(0, I_d)`` vector), so
   ``|w_i|`` has the law of a Gaussian vector's norm and ``w_i / |w_i|`` is uniform.

Unbiasedness of the kernel estimators needs only the marginal law of each row, which is the
same as for plain Gaussians; orthogonality lowers the variance.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def orthogonal_block(
    dim: int,
    *,
    num_blocks: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Matrices with orthonormal rows from the QR of Gaussian matrices (one batched QR).

    The signs of ``diag(R)`` are folded into ``Q`` so that the law is Haar (uniform).

    Returns:
        ``(d, d)``, or ``(num_blocks, d, d)`` when ``num_blocks`` is given.
    """
    count = 1 if num_blocks is None else num_blocks
    gaussian = torch.randn(count, dim, dim, generator=generator, device=device)  # (b, d, d)
    q, r = torch.linalg.qr(gaussian)  # (b, d, d) each
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))  # (b, d)
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    blocks = (q * signs[:, None, :]).transpose(-1, -2)  # (b, d, d), rows orthonormal
    return blocks[0] if num_blocks is None else blocks


def chi_norms(
    num_rows: int,
    dim: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Row norms ``s_i ~ chi(d)``: norms of ``num_rows`` fresh ``N(0, I_d)`` vectors, (m,)."""
    return torch.randn(num_rows, dim, generator=generator, device=device).norm(dim=-1)


def chi_mean(dim: int) -> float:
    """``E[chi(d)] = sqrt(2) Gamma((d+1)/2) / Gamma(d/2)``."""
    return math.sqrt(2.0) * math.exp(math.lgamma((dim + 1) / 2) - math.lgamma(dim / 2))


def gaussian_projection(
    num_rows: int,
    dim: int,
    *,
    orthogonal: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """Projection ``W`` of shape ``(m, d)`` whose rows each have the law ``N(0, I_d)``.

    Args:
        num_rows: Number of frequencies ``m``.
        dim: Input width ``d``.
        orthogonal: Block-orthogonal rows with chi(d) norms (else i.i.d. Gaussian rows).
        generator: Optional random generator (default: the global one).
        device: Device of the result.

    Returns:
        ``(m, d)`` float32 tensor.
    """
    if num_rows <= 0 or dim <= 0:
        raise ValueError(f"num_rows and dim must be positive, got num_rows={num_rows}, dim={dim}")
    if not orthogonal:
        return torch.randn(num_rows, dim, generator=generator, device=device)  # (m, d)
    num_blocks = math.ceil(num_rows / dim)
    blocks = orthogonal_block(dim, num_blocks=num_blocks, generator=generator, device=device)
    unit_rows = blocks.reshape(num_blocks * dim, dim)[:num_rows]  # (m, d), unit norm
    return unit_rows * chi_norms(num_rows, dim, generator=generator, device=device)[:, None]
