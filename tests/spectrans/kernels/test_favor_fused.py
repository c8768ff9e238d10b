"""The fused FAVOR+ kernels against the torch contraction (itself tested against float64 FAVOR+).

Where they run (the GPU, else Triton's interpreter) and when they are skipped:
``tests/triton_env.py``.
"""

from __future__ import annotations

import pytest
import torch

from spectrans.kernels import favor_fused
from spectrans.layers.attention.favor_contract import favor_contract
from tests.triton_env import DEVICE, HALF, needs_triton

pytestmark = needs_triton
# The kernels accumulate in float32; the reference is the torch contraction in float64 on the
# same float32 inputs.
TOL = 1e-4


def _inputs(n: int, d: int, e: int, m: int, masked: bool, seed: int):  # noqa: ANN202
    gen = torch.Generator().manual_seed(seed)
    b, h = 2, 3
    q, k = (torch.randn(b, h, n, d, generator=gen) * d**-0.25 for _ in "qk")
    v = torch.randn(b, h, n, e, generator=gen)
    v_aug = torch.cat([v, torch.ones(b, h, n, 1)], dim=-1)  # (B, H, N, e+1)
    projection = torch.randn(m, d, generator=gen)
    key_mask = None
    if masked:
        lengths = torch.tensor([n, max(1, n // 2)])
        key_mask = (torch.arange(n)[None, :] < lengths[:, None])[:, None, :]  # (B, 1, N)
        v_aug = torch.where(key_mask[..., None], v_aug, 0.0)
    to = {"device": DEVICE, "dtype": torch.float32}
    tensors = [t.to(**to).requires_grad_() for t in (q, k, v_aug)]
    mask = None if key_mask is None else key_mask.to(DEVICE)
    return (*tensors, projection.to(**to), mask)


def _ratio(out: torch.Tensor) -> torch.Tensor:
    """``numerator / normaliser`` of ``(B, H, N, e + 1)`` -> ``(B, H, N, e)``."""
    return out[..., :-1] / out[..., -1:]


@pytest.mark.parametrize("n", [1, 7, 64, 100])
@pytest.mark.parametrize(("d", "e", "m"), [(4, 4, 256), (8, 8, 20), (16, 15, 64)])
@pytest.mark.parametrize("masked", [False, True])
def test_output_and_gradients_match_the_torch_contraction(
    n: int, d: int, e: int, m: int, masked: bool
) -> None:
    """Both return ``c_i [numerator_i, normaliser_i]`` with their own row factors ``c_i``
    (the kernels' query features are ``softmax(W q')``, the torch path's are normalised by the
    key sums): the ratios and their gradients must agree."""
    q, k, v_aug, projection, key_mask = _inputs(n, d, e, m, masked, seed=n + d + m)
    got = _ratio(favor_fused.favor_contract_fused(q, k, v_aug, projection, key_mask))
    wide = [t.double() for t in (q, k, v_aug, projection)]
    want = _ratio(favor_contract(*wide, key_mask))  # (B, H, N, e) float64
    visible = torch.isfinite(want)  # rows with no visible key are 0 / 0 in both
    assert torch.equal(visible, torch.isfinite(got))
    want, got = want.nan_to_num(0.0), got.nan_to_num(0.0)
    assert torch.allclose(got.double(), want, rtol=TOL, atol=TOL * want.abs().max().item())
    grad = torch.randn_like(want)
    g_got = torch.autograd.grad(got, (q, k, v_aug), grad.float())
    g_want = torch.autograd.grad(want, (q, k, v_aug), grad)
    # one scale for the three gradients: with one key (n = 1) out = v has none in q and k
    scale = max(max(b.abs().max().item() for b in g_want), 1e-30)
    for a, b in zip(g_got, g_want, strict=True):
        assert torch.allclose(a.double(), b.double(), rtol=TOL, atol=TOL * scale)


def test_a_masked_key_does_not_move_the_output() -> None:
    q, k, v_aug, projection, key_mask = _inputs(40, 4, 4, 256, True, seed=3)
    out = favor_fused.favor_contract_fused(q, k, v_aug, projection, key_mask)
    k2 = k.detach().clone()
    k2[1, :, 30] = 50.0  # batch item 1 keeps 20 keys: key 30 is masked
    again = favor_fused.favor_contract_fused(q, k2, v_aug, projection, key_mask)
    ratio = out[..., :-1] / out[..., -1:]
    assert torch.allclose(ratio, again[..., :-1] / again[..., -1:], rtol=TOL, atol=TOL)


def test_wide_values_are_refused() -> None:
    x = torch.zeros(1, 1, 4, 4, device=DEVICE)
    with pytest.raises(ValueError, match="<= 16"):
        favor_fused.favor_contract_fused(x, x, torch.zeros(1, 1, 4, 20), torch.zeros(8, 4), None)


def test_the_kernels_compile_into_one_graph_as_custom_ops() -> None:
    q, k, v_aug, projection, key_mask = _inputs(24, 4, 4, 32, True, seed=5)

    def contract(q: torch.Tensor, k: torch.Tensor, v_aug: torch.Tensor) -> torch.Tensor:
        return favor_fused.favor_contract_fused(q, k, v_aug, projection, key_mask)

    torch._dynamo.reset()
    compiled = torch.compile(contract, fullgraph=True, backend="eager")
    out = compiled(q, k, v_aug)
    assert torch.equal(out, contract(q, k, v_aug))
    out.sum().backward()
    assert all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in (q, k, v_aug))
    torch._dynamo.reset()


def test_the_contraction_takes_the_kernels_only_when_switched_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from spectrans.layers.attention import favor_contract as module

    calls = []
    monkeypatch.setattr(favor_fused, "favor_contract_fused", lambda *a: calls.append(a))
    q, k, v_aug, projection, key_mask = _inputs(8, 4, 4, 32, False, seed=6)
    module.favor_contract(q, k, v_aug, projection, key_mask)
    assert calls == []  # off by default, and never on CPU tensors
    monkeypatch.setattr(module, "TRITON_KERNELS", True)
    module.favor_contract(q, k, v_aug, projection, key_mask)
    assert calls == [] if DEVICE == "cpu" else len(calls) == 1


@pytest.mark.parametrize("dtype", HALF)
def test_half_precision_is_as_close_to_float64_as_the_torch_path(dtype: torch.dtype) -> None:
    q, k, v_aug, projection, _ = _inputs(300, 4, 4, 256, False, seed=11)
    exact = favor_contract(q.double(), k.double(), v_aug.double(), projection.double(), None)

    def ratio_error(out: torch.Tensor) -> float:
        ratio = out.double()[..., :-1] / out.double()[..., -1:]
        return (ratio - exact[..., :-1] / exact[..., -1:]).abs().max().item()

    half = [t.detach().to(dtype) for t in (q, k, v_aug, projection)]
    fused = favor_fused.favor_contract_fused(*half, None)
    assert fused.dtype == dtype
    assert ratio_error(fused) <= 1.5 * ratio_error(favor_contract(*half, None))
