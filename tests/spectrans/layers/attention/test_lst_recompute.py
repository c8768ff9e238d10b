"""The LST backward that rebuilds the gated mixing against autograd through the same forward."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from spectrans.layers.attention.lst import LSTAttention, MixedSpectralAttention
from spectrans.layers.attention.softmax import SoftmaxAttention

PATHS = ["fast", "dense", "gemm", "folded", "factored"]
TRANSFORMS = ["dct", "dst", "hadamard", "wavelet", "mixed", "mixedfft"]


def _layer(transform: str, causal: bool, learnable_scale: bool = True) -> torch.nn.Module:
    """A float64 layer with a random, non-smooth profile and non-zero biases."""
    torch.manual_seed(0)
    if transform == "mixedfft":
        layer = MixedSpectralAttention(12, 3, causal=causal, max_sequence_length=16)
    else:
        layer = LSTAttention(
            12,
            3,
            transform,
            causal=causal,
            max_sequence_length=16,
            learnable_scale=learnable_scale,
        )
    with torch.no_grad():
        if layer.scale is not None:
            layer.scale.copy_(torch.rand_like(layer.scale) * 2 - 0.5)
        for lin in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
            lin.bias.normal_()
    return layer.double()


def _masks(batch: int, n: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(n)
    mask = torch.rand(batch, n, generator=gen) > 0.3
    mask[:, 0] = True
    return mask


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n", [7, 16, 33])
@pytest.mark.parametrize("masked", [False, True])
def test_recomputed_backward_equals_autograd(
    transform: str,
    causal: bool,
    path: str,
    n: int,
    masked: bool,
    backwards_agree: Callable[..., None],
) -> None:
    layer = _layer(transform, causal)
    layer.mixing_path = path
    x = torch.randn(2, n, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    backwards_agree(layer, x, _masks(2, n) if masked else None)


def test_recomputed_backward_with_a_fixed_profile(backwards_agree: Callable[..., None]) -> None:
    layer = _layer("dct", causal=False, learnable_scale=False)
    backwards_agree(layer, torch.randn(2, 9, 12, dtype=torch.float64), _masks(2, 9))


def test_masked_tokens_move_no_gradient_of_the_real_ones(run: Callable[..., Any]) -> None:
    layer = _layer("hadamard", causal=False)
    layer.recompute_mixing = True
    mask = _masks(2, 11)
    x = torch.randn(2, 11, 12, dtype=torch.float64)
    changed = torch.where(mask[..., None], x, torch.randn_like(x) * 5)
    out_a, grads_a = run(layer, x, mask, recompute=True)
    out_b, grads_b = run(layer, changed, mask, recompute=True)
    torch.testing.assert_close(out_a, out_b, atol=1e-12, rtol=0)
    torch.testing.assert_close(grads_a[0] * mask[..., None], grads_b[0] * mask[..., None])
    for g, w in zip(grads_a[1:], grads_b[1:], strict=True):  # parameters
        torch.testing.assert_close(g, w, atol=1e-11, rtol=1e-11)


@pytest.mark.parametrize("path", PATHS)
def test_bf16_autocast_rebuilds_the_same_forward(path: str, run: Callable[..., Any]) -> None:
    torch.manual_seed(0)
    layer = LSTAttention(64, 4, "dct", max_sequence_length=64)
    layer.mixing_path = path
    x = torch.randn(2, 40, 64)
    with torch.autocast("cpu", torch.bfloat16):
        want, want_grads = run(layer, x, _masks(2, 40), recompute=False)
        got, got_grads = run(layer, x, _masks(2, 40), recompute=True)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    for g, w in zip(got_grads, want_grads, strict=True):
        scale = w.abs().max().clamp_min(1e-6)
        assert ((g.float() - w.float()).abs().max() / scale).item() < 2e-2


def _saved_bytes(layer: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for the backward of one forward."""
    sizes: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast("cpu", torch.bfloat16):
            layer(x)
    return sum(sizes.values())


@pytest.mark.parametrize("path", ["fast", "gemm", "folded"])
def test_recompute_keeps_no_more_than_flash_softmax(path: str) -> None:
    """x, q, k, v and the output projection's input: at most softmax's (which keeps the
    attention output and its log-sum-exp besides)."""
    torch.manual_seed(0)
    x = torch.randn(2, 2048, 64, requires_grad=True)  # the weights' copies: 0.06 units
    lst = LSTAttention(64, 4, "dct", max_sequence_length=2048)
    lst.mixing_path = path
    lst.recompute_mixing = True
    unit = x.numel() * 2  # one bfloat16 copy of x
    kept = _saved_bytes(lst, x)
    assert kept <= 5.1 * unit
    lst.recompute_mixing = False  # keeps the mixed values and x, q, k, v, and on this path u
    assert _saved_bytes(lst, x) > 6 * unit
    assert kept <= _saved_bytes(SoftmaxAttention(64, 4), x)


def test_recompute_rule() -> None:
    layer = LSTAttention(16, 2, "dct", max_sequence_length=8)
    q = torch.randn(1, 2, 8, 8, requires_grad=True)
    k, v = torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8)
    assert layer.recompute_mixing is None
    assert not layer.recomputes(q, k, v)  # None: the default, keep
    layer.recompute_mixing = True
    assert layer.recomputes(q, k, v)
    assert not layer.recomputes(q.detach(), k, v)  # nothing to differentiate
    with torch.no_grad():
        assert not layer.recomputes(q, k, v)
    layer.recompute_mixing = False
    assert not layer.recomputes(q, k, v)


def test_default_keeps_the_intermediates_on_every_device() -> None:
    layer = LSTAttention(16, 2, "dct", max_sequence_length=8)
    on_cuda = SimpleNamespace(requires_grad=True, device=torch.device("cuda"))
    on_cpu = SimpleNamespace(requires_grad=True, device=torch.device("cpu"))
    assert not layer.recomputes(on_cuda, on_cuda, on_cuda)  # type: ignore[arg-type]
    assert not layer.recomputes(on_cpu, on_cpu, on_cpu)  # type: ignore[arg-type]
    layer.recompute_mixing = True
    assert layer.recomputes(on_cuda, on_cuda, on_cuda)  # type: ignore[arg-type]


@pytest.mark.parametrize("transform", ["dct", "mixedfft"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("path", ["fast", "gemm"])
def test_batch_chunks_give_the_same_gradients(
    transform: str,
    causal: bool,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    backwards_agree: Callable[..., None],
) -> None:
    from spectrans.layers.attention import chunked_recompute, lst_recompute

    layer = _layer(transform, causal)
    layer.mixing_path = path
    monkeypatch.setattr(chunked_recompute, "CHUNK_NUMEL", 1)  # one batch row per chunk
    assert len(lst_recompute.chunks_of(torch.empty(3, 3, 10, 4), "gemm")) == 3
    backwards_agree(layer, torch.randn(3, 10, 12, dtype=torch.float64), _masks(3, 10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("transform", ["dct", "hadamard", "mixed"])
@pytest.mark.parametrize("path", ["fast", "factored"])
def test_cuda_bf16_recomputed_backward_follows_autograd(
    transform: str, path: str, run: Callable[..., Any]
) -> None:
    torch.manual_seed(0)
    layer = LSTAttention(256, 4, transform, max_sequence_length=4096).cuda()
    layer.mixing_path = path
    x = torch.randn(8, 4096, 256, device="cuda")
    mask = _masks(8, 4096).cuda()
    with torch.autocast("cuda", torch.bfloat16):
        want, want_grads = run(layer, x, mask, recompute=False)
        got, got_grads = run(layer, x, mask, recompute=True)
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    for g, w in zip(got_grads, want_grads, strict=True):
        scale = w.abs().max().clamp_min(1e-6)
        assert ((g.float() - w.float()).abs().max() / scale).item() < 2e-2
