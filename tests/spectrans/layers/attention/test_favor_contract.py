"""favor_contract: the feature logits as a matmul or as unrolled broadcast products."""

import pytest
import torch

from spectrans.kernels import PositiveRandomFeatures
from spectrans.layers.attention import favor_contract
from spectrans.layers.attention.linear import feature_attention


def _unrolled(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """As ``torch.compile`` traces, with logits unrolled up to ``width``."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    monkeypatch.setattr(favor_contract, "UNROLLED_LOGITS_MAX_WIDTH", width)


@pytest.mark.parametrize("d", [1, 4, 8, 9])
def test_unrolled_logits_equal_the_matmul(d: int, monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(2, 3, 17, d, dtype=torch.float64)
    w_t = torch.randn(d, 40, dtype=torch.float64)
    bias = torch.randn(2, 3, 1, 40, dtype=torch.float64)
    want, want_biased = x @ w_t, x @ w_t + bias
    _unrolled(monkeypatch, 8)
    torch.testing.assert_close(favor_contract.feature_logits(x, w_t), want, atol=1e-12, rtol=0)
    got_biased = favor_contract.biased_logits(x, w_t, bias)
    torch.testing.assert_close(got_biased, want_biased, atol=1e-12, rtol=0)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("d", [4, 8])
def test_favor_attention_with_unrolled_logits_is_unchanged(
    d: int, masked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outputs and gradients of q, k and v equal the matmul path's (float64, fused backward)."""
    torch.manual_seed(d)
    kernel = PositiveRandomFeatures(d, 96).double()
    q, k, v = (torch.randn(2, 3, 23, d, dtype=torch.float64) for _ in range(3))
    mask = torch.arange(23)[None] < torch.tensor([23, 15])[:, None] if masked else None
    g = torch.randn(2, 3, 23, d, dtype=torch.float64)

    def run() -> tuple[torch.Tensor, ...]:
        inputs = [t.detach().requires_grad_() for t in (q, k, v)]
        out = feature_attention(kernel, *inputs, mask, causal=False)
        return (out, *torch.autograd.grad(out, inputs, g))

    want = run()
    _unrolled(monkeypatch, 8)
    for got, ref in zip(run(), want, strict=True):
        torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-10)


def test_compiled_performer_with_unrolled_logits_matches_eager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through Inductor on the CPU: the Performer layer's output and input gradient."""
    from spectrans.layers.attention.spectral import PerformerAttention

    torch.manual_seed(0)
    layer = PerformerAttention(16, 4, num_features=32, init_weights="truncnormal")
    layer.eval()  # fixed features, no dropout
    x = torch.randn(2, 19, 16, requires_grad=True)

    def run(fn) -> tuple[torch.Tensor, torch.Tensor]:
        out = fn(x)
        return out, torch.autograd.grad(out.square().sum(), x)[0]

    want = run(layer)
    monkeypatch.setattr(favor_contract, "UNROLLED_LOGITS_MAX_WIDTH", 8)
    torch._dynamo.reset()
    got = run(torch.compile(layer, fullgraph=True))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
