"""The chunked, recomputing backward against autograd: a toy function and the feature layers."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from spectrans.layers.attention import chunked_recompute
from spectrans.layers.attention.chunked_recompute import (
    CHUNK_NUMEL,
    batch_chunks,
    recompute_in_chunks,
)
from spectrans.layers.attention.spectral import (
    KernelAttention,
    PerformerAttention,
    SpectralAttention,
)


def test_batch_chunks_cover_the_batch_once() -> None:
    assert batch_chunks(torch.empty(8, 4, 1024, 64, device="meta")) == [slice(0, 8)]
    row = CHUNK_NUMEL // 4  # four rows per chunk
    chunks = batch_chunks(torch.empty(10, 1, row, 1, device="meta"))
    assert chunks == [slice(0, 4), slice(4, 8), slice(8, 10)]
    small = torch.empty(8, 4, 64, 64, device="meta")
    assert batch_chunks(small, min_chunks=4) == [slice(2 * i, 2 * i + 2) for i in range(4)]
    assert batch_chunks(small[:3], min_chunks=4) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    huge = torch.empty(2, 1, 2 * CHUNK_NUMEL, 1, device="meta")
    assert batch_chunks(huge) == [slice(0, 1), slice(1, 2)]


def _toy(weight: torch.Tensor):
    """Row-independent: tanh(x W) * mask, with an unused None input."""

    def fn(x: torch.Tensor, mask: torch.Tensor, nothing: None) -> torch.Tensor:
        assert nothing is None
        return torch.tanh(x @ weight) * mask[..., None].to(x.dtype)

    return fn


@pytest.mark.parametrize("rows_per_chunk", [1, 2, 5])
def test_gradients_equal_autograd_for_every_chunking(rows_per_chunk: int) -> None:
    gen = torch.Generator().manual_seed(rows_per_chunk)
    weight = torch.randn(6, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    x = torch.randn(5, 7, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    mask = torch.rand(5, 7, generator=gen) > 0.3
    g = torch.randn(5, 7, 4, dtype=torch.float64, generator=gen)
    fn = _toy(weight)
    want = fn(x, mask, None)
    want_grads = torch.autograd.grad(want, (x, weight), g)
    chunks = [slice(s, min(s + rows_per_chunk, 5)) for s in range(0, 5, rows_per_chunk)]
    got = recompute_in_chunks(fn, (x, mask, None), [weight], chunks)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    got_grads = torch.autograd.grad(got, (x, weight), g)
    for a, b in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-13, rtol=1e-13)


def test_an_empty_batch_passes_through() -> None:
    weight = torch.randn(6, 4, requires_grad=True)
    x = torch.randn(0, 7, 6, requires_grad=True)
    mask = torch.ones(0, 7, dtype=torch.bool)
    out = recompute_in_chunks(_toy(weight), (x, mask, None), [weight], batch_chunks(x, 8))
    assert out.shape == (0, 7, 4)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_a_frozen_input_and_parameter_get_no_gradient() -> None:
    weight = torch.randn(6, 4, dtype=torch.float64)  # frozen
    x = torch.randn(3, 7, 6, dtype=torch.float64, requires_grad=True)
    out = recompute_in_chunks(
        _toy(weight), (x, torch.ones(3, 7, dtype=torch.bool), None), [], [slice(0, 3)]
    )
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.shape == x.shape


def _feature_layers(causal: bool) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    kwargs = {"causal": causal}
    layers = [
        PerformerAttention(24, 3, num_features=16, **kwargs),
        PerformerAttention(24, 3, generalized=True, **kwargs),
        SpectralAttention(24, 3, num_features=8, kernel_type="gaussian", **kwargs),
        SpectralAttention(24, 3, num_features=8, kernel_type="softmax", **kwargs),
        KernelAttention(24, 3, kernel_type="gaussian", **kwargs),
        KernelAttention(24, 3, kernel_type="polynomial", **kwargs),
        KernelAttention(24, 3, kernel_type="spectral", **kwargs),  # learnable frequencies
    ]
    return [layer.double() for layer in layers]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("index", range(7))
def test_feature_layers_recompute_to_autograd(
    causal: bool, index: int, monkeypatch: pytest.MonkeyPatch, backwards_agree: Callable[..., None]
) -> None:
    layer = _feature_layers(causal)[index]
    gen = torch.Generator().manual_seed(index)
    x = torch.randn(5, 13, 24, dtype=torch.float64, generator=gen)
    mask = torch.rand(5, 13, generator=gen) > 0.3
    mask[:, 0] = True
    monkeypatch.setattr(chunked_recompute, "CHUNK_NUMEL", 1)  # one batch row per chunk
    backwards_agree(layer, x, mask)


def test_feature_layers_recompute_under_bf16_autocast(run: Callable[..., Any]) -> None:
    torch.manual_seed(0)
    layer = PerformerAttention(64, 4, num_features=32)
    x = torch.randn(4, 40, 64)
    mask = torch.ones(4, 40, dtype=torch.bool)
    with torch.autocast("cpu", torch.bfloat16):
        want, want_grads = run(layer, x, mask, recompute=False)
        got, got_grads = run(layer, x, mask, recompute=True)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    for g, w in zip(got_grads, want_grads, strict=True):
        assert ((g.float() - w.float()).abs().max() / w.abs().max().clamp_min(1e-6)) < 2e-2


def test_feature_layer_recompute_rule() -> None:
    layer = PerformerAttention(16, 2)
    on_cuda = SimpleNamespace(requires_grad=True, device=torch.device("cuda"))
    on_cpu = SimpleNamespace(requires_grad=True, device=torch.device("cpu"))
    assert layer.recompute_mixing is None  # the default: keep, on every device
    assert not layer.recomputes(on_cuda, on_cuda, on_cuda)  # type: ignore[arg-type]
    assert not layer.recomputes(on_cpu, on_cpu, on_cpu)  # type: ignore[arg-type]
    layer.recompute_mixing = True
    assert layer.recomputes(on_cuda, on_cuda, on_cuda)  # type: ignore[arg-type]
    assert layer.recomputes(on_cpu, on_cpu, on_cpu)  # type: ignore[arg-type]
    with torch.no_grad():
        assert not layer.recomputes(on_cpu, on_cpu, on_cpu)  # type: ignore[arg-type]
    layer.recompute_mixing = False
    assert not layer.recomputes(on_cuda, on_cuda, on_cuda)  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("generalized", [False, True])
def test_cuda_bf16_recomputed_backward_follows_autograd(
    generalized: bool, run: Callable[..., Any]
) -> None:
    torch.manual_seed(0)
    layer = PerformerAttention(256, 4, generalized=generalized).cuda()
    x = torch.randn(8, 2048, 256, device="cuda")
    mask = torch.rand(8, 2048, device="cuda") > 0.2
    with torch.autocast("cuda", torch.bfloat16):
        want, want_grads = run(layer, x, mask, recompute=False)
        got, got_grads = run(layer, x, mask, recompute=True)
    # The rebuilding forward runs the same operations on chunks of batch rows; cuBLAS may
    # pick another kernel for the smaller shapes, so a bf16 output may differ in its last
    # bit (measured on an H200: 1,460 of 4.2M elements, by at most 2^-15).
    torch.testing.assert_close(got, want, atol=2**-14, rtol=2**-7)
    for g, w in zip(got_grads, want_grads, strict=True):
        assert ((g.float() - w.float()).abs().max() / w.abs().max().clamp_min(1e-6)) < 2e-2
