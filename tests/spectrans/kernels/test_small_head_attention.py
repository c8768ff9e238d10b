"""The small-head attention kernels against exact float64 softmax attention with the same mask.

Where they run (the GPU, else Triton's interpreter) and when they are skipped:
``tests/triton_env.py``.
"""

from __future__ import annotations

import pytest
import torch

from spectrans.kernels import small_head_attention as sha
from tests.triton_env import DEVICE, HALF, needs_triton

pytestmark = needs_triton


def _oracle(q, k, v, keep, p):  # noqa: ANN001, ANN202
    """``(keep * softmax(q k^T / sqrt d) / (1 - p)) v`` in float64."""
    q, k, v = (t.double() for t in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)  # (B, H, N, N)
    if keep is not None:
        weights = weights * keep.double() / (1 - p)
    return weights @ v  # (B, H, N, d)


def _keep(seed: torch.Tensor, b: int, h: int, n: int, p: float) -> torch.Tensor:
    masks = [sha.keep_mask(seed, i, n, p) for i in range(b * h)]  # each (N, N)
    return torch.stack(masks).view(b, h, n, n)


@pytest.mark.parametrize("n", [1, 7, 64, 100])
@pytest.mark.parametrize("d", [4, 8, 16])
@pytest.mark.parametrize("p", [0.0, 0.3])
def test_forward_and_gradients_match_the_oracle(n: int, d: int, p: float) -> None:
    gen = torch.Generator().manual_seed(n * 100 + d)
    b, h = 2, 3
    q, k, v = (torch.randn(b, h, n, d, generator=gen).to(DEVICE).requires_grad_() for _ in "qkv")
    seed = torch.tensor(12345, dtype=torch.int64, device=DEVICE)
    out = sha.small_head_attention(q, k, v, p, seed)  # (B, H, N, d)
    keep = _keep(seed, b, h, n, p) if p > 0 else None
    expected = _oracle(q, k, v, keep, p)
    assert torch.allclose(out.double(), expected, atol=1e-4, rtol=1e-4)
    grad = torch.randn(b, h, n, d, generator=gen).to(DEVICE)
    got = torch.autograd.grad(out, (q, k, v), grad)
    want = torch.autograd.grad(expected, (q, k, v), grad.double())
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g.double(), w.double(), atol=1e-4, rtol=1e-4)


def test_the_mask_drops_the_asked_fraction_and_changes_with_the_seed() -> None:
    n, p = 128, 0.25
    one = sha.keep_mask(torch.tensor(1, device=DEVICE), 0, n, p)
    two = sha.keep_mask(torch.tensor(2, device=DEVICE), 0, n, p)
    other_head = sha.keep_mask(torch.tensor(1, device=DEVICE), 1, n, p)
    assert abs(1 - one.float().mean().item() - p) < 0.02
    assert (one != two).float().mean().item() > 0.2 and (one != other_head).any()


@pytest.mark.parametrize("dtype", HALF)
def test_half_precision_inputs_stay_close_to_the_oracle(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 64, 4, generator=gen).to(DEVICE, dtype) for _ in "qkv")
    out = sha.small_head_attention(q, k, v, 0.0)
    assert out.dtype == dtype
    assert torch.allclose(out.double(), _oracle(q, k, v, None, 0.0), atol=3e-2)


def test_wide_heads_are_refused() -> None:
    x = torch.zeros(1, 1, 4, 32, device=DEVICE)
    with pytest.raises(ValueError, match="head width 32"):
        sha.small_head_attention(x, x, x)


def test_the_kernels_compile_into_one_graph_as_custom_ops() -> None:
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 40, 4, generator=gen).to(DEVICE).requires_grad_() for _ in "qkv")
    seed = torch.tensor(7, dtype=torch.int64, device=DEVICE)

    def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return sha.small_head_attention(q, k, v, 0.2, seed)

    torch._dynamo.reset()
    compiled = torch.compile(attend, fullgraph=True, backend="eager")
    out = compiled(q, k, v)
    assert torch.equal(out, attend(q, k, v))  # the same seed draws the same mask
    out.sum().backward()
    assert all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in (q, k, v))
    torch._dynamo.reset()
