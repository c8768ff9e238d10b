"""The dense float64 oracle of the LST filters: ``M u = A^T diag(gains) A u``, per head."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from spectrans.layers.spectral_filter import transform_matrix


def assert_matches_dense_operator(
    filter_fn: Callable[[Tensor, Tensor, str], Tensor],
    kind: str,
    n: int,
    d: int = 4,
    atol: float = 1e-12,
    grad_atol: float = 1e-12,
) -> None:
    """``filter_fn(u, gains, kind)`` equals the dense operator on random float64 inputs, and
    so do its gradients for ``u`` and ``gains``."""
    gen = torch.Generator().manual_seed(n)
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))  # (F, N)
    u = torch.randn(2, 3, n, d, dtype=torch.float64, generator=gen, requires_grad=True)
    gains = torch.randn(3, a.shape[0], dtype=torch.float64, generator=gen, requires_grad=True)
    ref = torch.einsum("kj,hk,kl,bhld->bhjd", a, gains, a, u)  # (B, H, N, d)
    y = filter_fn(u, gains, kind)
    torch.testing.assert_close(y, ref, atol=atol, rtol=0)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    got = torch.autograd.grad(y, (u, gains), g)
    want = torch.autograd.grad(ref, (u, gains), g)
    for x, w in zip(got, want, strict=True):
        torch.testing.assert_close(x, w, atol=grad_atol, rtol=0)


def bfloat16_relative_error(
    filter_fn: Callable[[Tensor, Tensor, str], Tensor], kind: str, n: int = 2001
) -> float:
    """``||filter_fn(u, gains) in bfloat16 - M u||_2 / ||M u||_2`` on fixed random inputs."""
    gen = torch.Generator().manual_seed(0)
    a = transform_matrix(kind, n, torch.float64, torch.device("cpu"))  # (F, N)
    u = torch.randn(2, 2, n, 8, dtype=torch.float64, generator=gen)
    gains = torch.rand(2, a.shape[0], dtype=torch.float64, generator=gen)
    ref = torch.einsum("kj,hk,kl,bhld->bhjd", a, gains, a, u)  # (B, H, N, d)
    low = filter_fn(u.bfloat16(), gains.bfloat16(), kind).double()
    return ((low - ref).norm() / ref.norm()).item()
