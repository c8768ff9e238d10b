"""S4D against the explicit ZOH recurrence in float64; causality and padding exact."""

from __future__ import annotations

import copy
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


def _vandermonde(layer: S4DMixing, n: int) -> torch.Tensor:
    """K_l = 2 Re sum_m C_m Bbar_m Abar_m^l by explicit powers, complex128: (dirs, D, n)."""
    a = torch.complex(-torch.exp(layer.log_a_real.double()), layer.a_imag.double())  # (D, M)
    dt_a = a * torch.exp(layer.log_dt.double())[:, None]
    b_bar = (torch.exp(dt_a) - 1) / a
    c = torch.view_as_complex(layer.c.double().contiguous())  # (dirs, D, M)
    powers = torch.exp(dt_a[:, :, None] * torch.arange(n, dtype=torch.float64))  # (D, M, n)
    return 2 * torch.einsum("rdm,dml->rdl", c * b_bar, powers).real


@pytest.mark.parametrize("init", ["lin", "inv"])
@pytest.mark.parametrize("n", [1, 2, 7, 64, 100])
def test_kernel_matches_explicit_powers(init: str, n: int) -> None:
    torch.manual_seed(n)
    layer = S4DMixing(hidden_dim=6, state_dim=64, init=init, bidirectional=True)
    ref = _vandermonde(layer, n)
    scale = ref.abs().max().item()
    assert (layer.kernel(n, torch.float64) - ref).abs().max().item() <= 1e-10 * scale
    assert (layer.kernel(n).double() - ref).abs().max().item() <= 1e-3 * scale


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("n", [1, 2, 7, 64, 100])
def test_ssm_matches_both_recurrences(bidirectional: bool, n: int) -> None:
    torch.manual_seed(n)
    layer = S4DMixing(hidden_dim=3, state_dim=8, bidirectional=bidirectional).double()
    u = torch.randn(2, n, 3, dtype=torch.float64)
    ref = _recurrence(layer, u) + u * layer.d.double()
    if bidirectional:
        ref = ref + _recurrence(layer, u.flip(1), 1).flip(1)
    got = layer.ssm(u)
    assert (got - ref).abs().max().item() <= 1e-10 * ref.abs().max().item()
    got32 = layer.float().ssm(u.float()).double()
    assert (got32 - ref).abs().max().item() <= 1e-4 * ref.abs().max().item()


@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_tokens_anywhere_do_not_move_real_outputs(bidirectional: bool) -> None:
    torch.manual_seed(3)
    layer = build_layer({"name": "s4d", "hidden_dim": 8, "bidirectional": bidirectional}).eval()
    x = torch.randn(3, 37, 8)
    mask = torch.rand(3, 37) > 0.4
    mask[:, 0] = True
    other = x.clone()
    other[~mask] = 100 * torch.randn(int((~mask).sum()), 8)
    with torch.no_grad():
        a, b = layer(x, mask), layer(other, mask)
    assert torch.equal(a[mask], b[mask])
    assert (a[~mask] == 0).all()
    with torch.no_grad():  # the masked tokens are zero inputs, not dropped ones
        assert torch.allclose(a, layer(x * mask[..., None], mask), atol=1e-6)


@pytest.mark.parametrize("n", [2, 7, 64, 100])
def test_causal_float64_and_float32(n: int) -> None:
    torch.manual_seed(4)
    layer = build_layer({"name": "s4d", "hidden_dim": 4, "causal": True}).eval()
    x = torch.randn(2, n, 4)
    cut = n // 2
    future = x.clone()
    future[:, cut:] += 10 * torch.randn(2, n - cut, 4)
    with torch.no_grad():
        for lay, dt in ((layer, torch.float32), (copy.deepcopy(layer).double(), torch.float64)):
            a, b = lay(x.to(dt)), lay(future.to(dt))
            bound = 1e-12 if dt == torch.float64 else 1e-5
            assert (a[:, :cut] - b[:, :cut]).abs().max().item() <= bound


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradcheck_input_and_parameters(bidirectional: bool) -> None:
    torch.manual_seed(5)
    layer = S4DMixing(hidden_dim=2, state_dim=4, bidirectional=bidirectional).double()
    names = [name for name, _ in layer.named_parameters() if not name.startswith("out_proj")]
    params = tuple(getattr(layer, name).detach().clone().requires_grad_() for name in names)
    u = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)

    def ssm(u: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return _call_ssm(layer, dict(zip(names, values, strict=True)), u)

    assert torch.autograd.gradcheck(ssm, (u, *params), fast_mode=True)


def _call_ssm(layer: S4DMixing, state: dict[str, torch.Tensor], u: torch.Tensor) -> torch.Tensor:
    """layer.ssm(u) with the parameters in ``state`` swapped in."""
    saved = {name: getattr(layer, name) for name in state}
    try:
        for name, value in state.items():
            delattr(layer, name)
            setattr(layer, name, value)
        return layer.ssm(u)
    finally:
        for name, value in saved.items():
            delattr(layer, name)
            layer.register_parameter(name, value)


def test_bf16_autocast_matches_float64() -> None:
    torch.manual_seed(6)
    layer = build_layer({"name": "s4d", "hidden_dim": 16, "bidirectional": True}).eval()
    x = torch.randn(2, 300, 16)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = layer(x).float()
        kernel = layer.kernel(300)
    assert kernel.dtype == torch.float32
    assert torch.equal(kernel, layer.kernel(300))  # the kernel is computed with autocast off
    with torch.no_grad():
        ref = layer.double()(x.double())
    assert ((got.double() - ref).norm() / ref.norm()).item() <= 2e-2


def _run_s4d(layer: S4DMixing, x: torch.Tensor, mask: torch.Tensor, recompute: bool | None):
    """Output, and the gradients of x and every parameter for a fixed cotangent."""
    layer.recompute_mixing = recompute
    x = x.detach().requires_grad_()
    out = layer(x, mask)
    cotangent = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return out, torch.autograd.grad(out, [x, *layer.parameters()], cotangent)


@pytest.mark.parametrize(
    ("bidirectional", "causal"), [(False, False), (True, False), (False, True)]
)
@pytest.mark.parametrize("rows_per_chunk", [1, 3])
def test_recomputing_backward_equals_autograd(
    bidirectional: bool, causal: bool, rows_per_chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spectrans.layers.attention import chunked_recompute

    torch.manual_seed(0)
    layer = S4DMixing(16, bidirectional=bidirectional, causal=causal).double()
    x = torch.randn(3, 21, 16, dtype=torch.float64)
    mask = torch.rand(3, 21) > 0.3
    want, want_grads = _run_s4d(layer, x, mask, recompute=False)
    monkeypatch.setattr(chunked_recompute, "CHUNK_NUMEL", rows_per_chunk * 21 * 16)
    got, got_grads = _run_s4d(layer, x, mask, recompute=True)
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-12)


def test_recomputing_backward_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    layer = S4DMixing(32)
    x, mask = torch.randn(4, 50, 32), torch.ones(4, 50, dtype=torch.bool)
    with torch.autocast("cpu", torch.bfloat16):
        want, want_grads = _run_s4d(layer, x, mask, recompute=False)
        got, got_grads = _run_s4d(layer, x, mask, recompute=True)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_recompute_rule() -> None:
    from types import SimpleNamespace

    layer = S4DMixing(8)
    on_cuda = SimpleNamespace(device=torch.device("cuda"))
    on_cpu = SimpleNamespace(device=torch.device("cpu"))
    assert layer.recompute_mixing is None  # the default: keep, on every device
    assert not layer.recomputes(on_cuda) and not layer.recomputes(on_cpu)  # type: ignore[arg-type]
    layer.recompute_mixing = True
    assert layer.recomputes(on_cpu) and layer.recomputes(on_cuda)  # type: ignore[arg-type]
    with torch.no_grad():
        assert not layer.recomputes(on_cpu)  # type: ignore[arg-type]
    layer.recompute_mixing = False
    assert not layer.recomputes(on_cuda)  # type: ignore[arg-type]
