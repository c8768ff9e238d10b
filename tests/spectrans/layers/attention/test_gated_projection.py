"""gated_projection: the LST output projection that rebuilds its input in the backward."""

import pytest
import torch
from torch.nn import functional as F

from spectrans.layers import dropout as hashed
from spectrans.layers.attention.gated_projection import GatedOutProjection, gated_out_projection
from spectrans.layers.attention.projections import merge_heads


def _inputs(bias: bool, dtype=torch.float64):
    torch.manual_seed(0)
    q, mixed = (torch.randn(2, 3, 7, 4, dtype=dtype, requires_grad=True) for _ in range(2))
    weight = torch.randn(5, 12, dtype=dtype, requires_grad=True)
    b = torch.randn(5, dtype=dtype, requires_grad=True) if bias else None
    return q, mixed, weight, b


def _reference(q, mixed, weight, b, keep, scale):
    y = merge_heads(torch.sigmoid(q) * mixed)  # (B, N, H*d)
    y = y if keep is None else y * keep * scale
    return F.linear(y, weight, b)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dropped", [False, True])
def test_values_and_gradients_equal_autograd_in_float64(bias: bool, dropped: bool) -> None:
    q, mixed, weight, b = _inputs(bias)
    keep = torch.rand(2, 7, 12) > 0.3 if dropped else None
    scale = 1 / 0.7 if dropped else 1.0
    g = torch.randn(2, 7, 5, dtype=torch.float64)
    leaves = [t for t in (q, mixed, weight, b) if t is not None]
    want = _reference(q, mixed, weight, b, keep, scale)
    want_grads = torch.autograd.grad(want, leaves, g)
    got = GatedOutProjection.apply(q, mixed, weight, b, keep, scale)
    got_grads = torch.autograd.grad(got, leaves, g)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    for a, e in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, e, atol=1e-12, rtol=0)


def test_it_keeps_q_and_the_mixed_values_not_its_input() -> None:
    q, mixed, weight, b = _inputs(True)
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        GatedOutProjection.apply(q, mixed, weight, b, None, 1.0)
    assert {id(t) for t in saved} == {id(q), id(mixed), id(weight)}


def test_under_autocast_it_matches_the_plain_layers_in_bfloat16() -> None:
    q, mixed, weight, b = _inputs(True, torch.float32)
    g = torch.randn(2, 7, 5)
    leaves = [q, mixed, weight, b]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = _reference(q, mixed, weight, b, None, 1.0)
        got = GatedOutProjection.apply(q, mixed, weight, b, None, 1.0)
    assert got.dtype == want.dtype == torch.bfloat16
    torch.testing.assert_close(got, want)
    grads = torch.autograd.grad(got, leaves, g.bfloat16())
    want_grads = torch.autograd.grad(want, leaves, g.bfloat16())
    for a, e in zip(grads, want_grads, strict=True):
        assert a.dtype == e.dtype
        torch.testing.assert_close(a, e, atol=3e-2, rtol=3e-2)


def test_dropout_scales_kept_values_and_zeroes_the_rest() -> None:
    q, mixed, weight, _ = _inputs(False)
    out_proj = torch.nn.Linear(12, 5, bias=False).double()
    with torch.no_grad():
        out_proj.weight.copy_(torch.eye(5, 12, dtype=torch.float64))
    layer = hashed.Dropout(0.5).train()
    torch.manual_seed(3)
    out = gated_out_projection(q, mixed, out_proj, layer)  # (B, N, 5): y's first 5 columns
    y = merge_heads(torch.sigmoid(q) * mixed)[..., :5]
    kept = out != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(out[kept], 2 * y[kept])


def test_through_inductor_it_matches_eager() -> None:
    q, mixed, weight, b = _inputs(True, torch.float32)
    leaves = [q, mixed, weight, b]

    def run(fn):
        out = fn(q, mixed, weight, b)
        return (out, *torch.autograd.grad(out.square().sum(), leaves))

    def plain(q, mixed, weight, b):
        return GatedOutProjection.apply(q, mixed, weight, b, None, 1.0)

    want = run(plain)
    torch._dynamo.reset()
    for a, e in zip(run(torch.compile(plain, fullgraph=True)), want, strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


def test_dropout_of_every_value_gives_zeros_and_zero_gradients() -> None:
    q, mixed, _, _ = _inputs(False)
    out_proj = torch.nn.Linear(12, 5).double()
    out = gated_out_projection(q, mixed, out_proj, hashed.Dropout(1.0).train())
    torch.testing.assert_close(out, out_proj.bias.expand_as(out))
    grad_q, grad_mixed = torch.autograd.grad(out.sum(), (q, mixed))
    assert not grad_q.any() and not grad_mixed.any()
