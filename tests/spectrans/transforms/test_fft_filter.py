"""filter_conv against the explicit float64 sum y_i = sum_j h_{(i-j) mod L} u_j."""

from __future__ import annotations

import pytest
import torch

from spectrans.transforms.fft import fft_length
from spectrans.transforms.fft_filter import filter_conv


def _direct(u: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """The defining sum, one output sample at a time (float64)."""
    n, length = u.shape[-1], h.shape[-1]
    idx = (torch.arange(n)[:, None] - torch.arange(n)[None, :]) % length  # (N, N): i - j
    taps = h[..., idx]  # (..., N, N)
    return (taps * u[..., None, :]).sum(-1)  # (..., N)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 100])
@pytest.mark.parametrize("minimal", [False, True])
def test_matches_the_direct_sum(n: int, minimal: bool) -> None:
    torch.manual_seed(n)
    length = 2 * n - 1 if minimal else fft_length(n)
    u = torch.randn(3, 4, n, dtype=torch.float64)
    h = torch.randn(4, length, dtype=torch.float64)
    ref = _direct(u, h)
    got = filter_conv(u, h)
    assert got.dtype == torch.float64
    assert (got - ref).abs().max().item() <= 1e-12 * max(1.0, ref.abs().max().item())
    got32 = filter_conv(u.float(), h.float())
    assert got32.dtype == torch.float32
    assert (got32.double() - ref).abs().max().item() <= 1e-4 * ref.abs().max().item()


def test_causal_filter_is_causal_and_anticausal_filter_anticausal() -> None:
    torch.manual_seed(0)
    n, length = 30, fft_length(30)
    u = torch.randn(2, n, dtype=torch.float64)
    h = torch.randn(length, dtype=torch.float64)
    causal, anti = h.clone(), h.clone()
    causal[n:] = 0
    anti[1 : length - n + 1] = 0
    v = u.clone()
    v[:, 20:] += 5.0
    assert torch.allclose(filter_conv(u, causal)[:, :20], filter_conv(v, causal)[:, :20])
    assert not torch.allclose(filter_conv(u, causal)[:, 20:], filter_conv(v, causal)[:, 20:])
    w = u.clone()
    w[:, :10] += 5.0
    assert torch.allclose(filter_conv(u, anti)[:, 10:], filter_conv(w, anti)[:, 10:])
    assert not torch.allclose(filter_conv(u, anti)[:, :10], filter_conv(w, anti)[:, :10])


@pytest.mark.parametrize(("n", "length"), [(5, 9), (5, 16), (1, 2)])
def test_gradcheck(n: int, length: int) -> None:
    torch.manual_seed(1)
    u = torch.randn(2, 3, n, dtype=torch.float64, requires_grad=True)
    h = torch.randn(3, length, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(filter_conv, (u, h))


def test_gradients_match_the_direct_sum_under_broadcasting() -> None:
    torch.manual_seed(2)
    u = torch.randn(2, 3, 11, dtype=torch.float64, requires_grad=True)
    h = torch.randn(1, 32, dtype=torch.float64, requires_grad=True)  # broadcast over channels
    w = torch.randn(2, 3, 11, dtype=torch.float64)
    (filter_conv(u, h) * w).sum().backward()
    gu, gh = u.grad.clone(), h.grad.clone()
    u.grad = h.grad = None
    (_direct(u, h) * w).sum().backward()
    assert torch.allclose(gu, u.grad, atol=1e-12)
    assert torch.allclose(gh, h.grad, atol=1e-12)


def test_short_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than 2N - 1"):
        filter_conv(torch.randn(2, 10), torch.randn(18))
