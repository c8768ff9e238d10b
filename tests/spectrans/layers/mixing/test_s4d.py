"""S4D against the explicit ZOH recurrence in float64; causality and padding exact."""

from __future__ import annotations

import math

import pytest
import torch

from spectrans.layers.mixing.s4d import S4DMixing, s4d_imaginary
from spectrans.registry import build_layer


def _recurrence(layer: S4DMixing, u: torch.Tensor, direction: int = 0) -> torch.Tensor:
    """x_{k+1} = Abar x_k + Bbar u_k, y_k = 2 Re(C x_{k+1}); u (B, N, D) float64."""
    a = torch.complex(-torch.exp(layer.log_a_real.double()), layer.a_imag.double())  # (D, M)
    dt = torch.exp(layer.log_dt.double())[:, None]
    a_bar = torch.exp(dt * a)
    b_bar = (a_bar - 1) / a
    c = torch.view_as_complex(layer.c[direction].double().contiguous())  # (D, M)
    x = torch.zeros(u.shape[0], *a.shape, dtype=torch.complex128)
    ys = []
    for k in range(u.shape[1]):
        x = a_bar * x + b_bar * u[:, k, :, None]
        ys.append(2 * (c * x).sum(-1).real)
    return torch.stack(ys, 1)  # (B, N, D)


@pytest.mark.parametrize("init", ["lin", "inv"])
@pytest.mark.parametrize("n", [1, 7, 16, 63, 128])
def test_kernel_convolution_matches_recurrence(init: str, n: int) -> None:
    torch.manual_seed(n)
    layer = S4DMixing(hidden_dim=5, state_dim=16, init=init, dt_min=0.01, dt_max=0.5).double()
    u = torch.randn(2, n, 5, dtype=torch.float64)
    ref = _recurrence(layer, u) + u * layer.d.double()
    got = layer.ssm(u)
    assert ((got - ref).norm() / ref.norm()).item() <= 1e-6
    assert (got - ref).abs().max().item() <= 1e-9 * ref.abs().max().item()


def test_bidirectional_adds_the_time_reversed_recurrence() -> None:
    torch.manual_seed(0)
    layer = S4DMixing(hidden_dim=4, state_dim=8, bidirectional=True).double()
    u = torch.randn(3, 20, 4, dtype=torch.float64)
    ref = _recurrence(layer, u, 0) + _recurrence(layer, u.flip(1), 1).flip(1)
    ref = ref + u * layer.d.double()
    assert ((layer.ssm(u) - ref).norm() / ref.norm()).item() <= 1e-6


def test_init_frequencies() -> None:
    assert torch.allclose(s4d_imaginary(8, "lin"), math.pi * torch.arange(4.0).double())
    inv = s4d_imaginary(8, "inv")
    assert torch.allclose(inv, 8 / math.pi * (8 / (2 * torch.arange(4.0).double() + 1) - 1))


@pytest.mark.parametrize("causal", [False, True])
def test_unidirectional_is_exactly_causal(causal: bool) -> None:
    torch.manual_seed(1)
    layer = build_layer({"name": "s4d", "hidden_dim": 8, "causal": causal}).eval()
    x = torch.randn(2, 50, 8)
    future = x.clone()
    future[:, 30:] += 10 * torch.randn(2, 20, 8)
    with torch.no_grad():
        a, b = layer(x), layer(future)
    assert (a[:, :30] - b[:, :30]).abs().max().item() <= 1e-6
    assert (a[:, 30:] - b[:, 30:]).abs().max().item() > 1e-3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_at_the_end_leaks_nowhere(bidirectional: bool) -> None:
    """Real outputs under padding equal those of the unpadded, shorter sequence."""
    torch.manual_seed(2)
    layer = build_layer({"name": "s4d", "hidden_dim": 8, "bidirectional": bidirectional})
    layer = layer.double().eval()
    x = torch.randn(2, 24, 8, dtype=torch.float64)
    lengths = torch.tensor([24, 9])
    mask = torch.arange(24)[None] < lengths[:, None]
    x[~mask] = 1e3  # large garbage in the padding
    with torch.no_grad():
        padded = layer(x, mask)
        short = layer(x[1:, :9])
    assert (padded[1, :9] - short[0]).abs().max().item() <= 1e-10
    assert (padded[~mask] == 0).all()


def test_causal_with_bidirectional_is_refused() -> None:
    with pytest.raises(ValueError, match="bidirectional"):
        S4DMixing(hidden_dim=4, causal=True, bidirectional=True)
    with pytest.raises(Exception, match="bidirectional"):
        build_layer({"name": "s4d", "hidden_dim": 4, "causal": True, "bidirectional": True})
