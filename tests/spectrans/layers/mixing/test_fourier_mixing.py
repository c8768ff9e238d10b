"""FNet mixing vs dense DFT matrices; masks exact; causal refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.config.layers.mixing import FNetMixingConfig
from spectrans.layers.mixing.fourier import FourierMixing
from spectrans.registry import build_layer


def _dft(n: int) -> np.ndarray:
    return np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)


def _real_dft2(x: np.ndarray) -> np.ndarray:
    r""":math:`\mathrm{Re}(F_N x F_D^T)` of ``x (B, N, D)`` by the dense DFT matrices."""
    n, d = x.shape[-2:]
    return np.real(_dft(n) @ x @ _dft(d).T)  # (B, N, D)


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_matches_dense_dft(n: int) -> None:
    layer = FourierMixing(6)
    x = torch.randn(2, n, 6, dtype=torch.float64)
    mask = torch.rand(2, n) > 0.3
    m = mask.numpy()[:, :, None].astype(float)
    ref = _real_dft2(x.numpy() * m) * m
    np.testing.assert_allclose(layer(x, mask).numpy(), ref, atol=1e-10)
    ref_nomask = _real_dft2(x.numpy())
    np.testing.assert_allclose(layer(x).numpy(), ref_nomask, atol=1e-10)


def test_mask_exact_float32() -> None:
    layer = FourierMixing(8)
    x = torch.randn(2, 30, 8)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, 1::2] = False
    x2 = x.clone()
    x2[~mask] = torch.randn(int((~mask).sum()), 8) * 100
    y1, y2 = layer(x, mask), layer(x2, mask)
    assert (y1[mask] - y2[mask]).abs().max() <= 1e-6
    assert y1[~mask].abs().max() == 0


def test_defaults_registry_and_causal_refused() -> None:
    out, weights = FourierMixing()(torch.randn(1, 5, 512), return_attention=True)
    assert out.shape == (1, 5, 512) and weights is None
    assert not list(FourierMixing().parameters())
    assert type(build_layer({"name": "fnet", "hidden_dim": 16})) is FourierMixing
    assert type(FourierMixing.from_config(FNetMixingConfig(hidden_dim=8))) is FourierMixing
    with pytest.raises(ValueError, match="causal=True"):
        FourierMixing(16, causal=True)


@pytest.mark.parametrize("n", [1, 2, 7, 12, 100, 128, 2000])
def test_factored_path_matches_dense_dft_with_mask_and_gradients(n: int) -> None:
    layer = FourierMixing(6)
    layer.mixing_path = "factored"
    assert layer.chosen_path(n, torch.device("cpu")) == ("fft" if n in (1, 2, 7) else "factored")
    x = torch.randn(2, n, 6, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, n) > 0.3
    mask[:, 0] = True
    m = mask.numpy()[:, :, None].astype(float)
    out = layer(x, mask)
    xm = x.detach().numpy() * m
    ref = _real_dft2(xm) * m
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-9 * max(n, 10))
    x2 = x.detach().clone()
    x2[~mask] = 1e3  # masked tokens reach no output
    torch.testing.assert_close(layer(x2, mask), out.detach(), atol=1e-9 * max(n, 10), rtol=0)
    (g,) = torch.autograd.grad(out.pow(2).sum(), x)
    layer.mixing_path = "fft"
    (ref_g,) = torch.autograd.grad(layer(x, mask).pow(2).sum(), x)
    torch.testing.assert_close(g, ref_g, atol=1e-8 * max(n, 10), rtol=1e-7)


def test_factored_path_bf16_autocast_and_auto_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import spectrans.layers.mixing.fourier as fourier

    layer = FourierMixing(32)
    assert layer.chosen_path(2000, torch.device("cuda")) == "fft"  # unset: never factored
    monkeypatch.setattr(fourier, "FACTORED_MIN_LENGTH", 1024)
    assert layer.chosen_path(2000, torch.device("cuda")) == "factored"
    assert layer.chosen_path(1000, torch.device("cuda")) == "fft"
    assert layer.chosen_path(2000, torch.device("cpu")) == "fft"
    assert layer.chosen_path(2003, torch.device("cuda")) == "fft"  # prime: no split
    layer.mixing_path = "factored"
    x = torch.randn(2, 2000, 32)
    reference = fourier.fourier_mix_2d(x.double())
    with torch.autocast("cpu", torch.bfloat16):
        low = layer(x)
    error = (low.double() - reference).norm() / reference.norm()
    assert error < 2e-2


@pytest.mark.parametrize("path", ["gemm", "fft_traced"])
@pytest.mark.parametrize("n", [1, 2, 7, 12, 64, 100, 2001])
@pytest.mark.parametrize("d", [1, 5, 6, 32])
def test_path_matches_dense_dft_with_mask_and_gradients(n: int, d: int, path: str) -> None:
    layer = FourierMixing(d)
    layer.mixing_path = path
    assert layer.chosen_path(n, torch.device("cpu")) == path
    x = torch.randn(2, n, d, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, n) > 0.3
    mask[:, 0] = True
    m = mask.numpy()[:, :, None].astype(float)
    out = layer(x, mask)
    xm = x.detach().numpy() * m
    ref = _real_dft2(xm) * m
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-9 * max(n, 10))
    x2 = x.detach().clone()
    x2[~mask] = 1e3  # masked tokens reach no output
    torch.testing.assert_close(layer(x2, mask), out.detach(), atol=1e-9 * max(n, 10), rtol=0)
    w = torch.randn_like(out)
    (g,) = torch.autograd.grad((out * w).sum(), x)
    # the oracle's gradient: mask * Re(F_N (mask * w) F_D), the adjoint of the masked map
    wm = w.numpy() * m
    ref_g = _real_dft2(wm) * m
    np.testing.assert_allclose(g.numpy(), ref_g, atol=1e-9 * max(n, 10))


def test_gemm_path_auto_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    import spectrans.layers.mixing.fourier as fourier

    layer = FourierMixing(32)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert layer.chosen_path(2001, cuda) == "fft"  # measured slower than cuFFT: never gemm
    assert {layer.chosen_path(n, cuda) for n in (1024, 2001, 65536)} == {"fft"}  # eager
    assert layer.chosen_path(2001, cuda, compiled=True) == "fft"  # narrow: fft2, no opaque op
    wide = FourierMixing(fourier.HALF_SPECTRUM_MIN_WIDTH)
    assert {wide.chosen_path(n, cuda, compiled=True) for n in (1024, 2001)} == {"fft_traced"}
    assert wide.chosen_path(2001, cuda) == "fft"  # eager
    assert wide.chosen_path(2001, cpu, compiled=True) == "fft"
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert wide.chosen_path(2001, cuda) == "fft_traced"  # asks the compiler when not told
    assert wide.chosen_path(2001, cuda, compiled=False) == "fft"
    monkeypatch.setattr(fourier, "TRACED_WHEN_COMPILED", False)
    assert wide.chosen_path(2001, cuda) == "fft"
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: False)
    monkeypatch.setattr(fourier, "GEMM_MAX_LENGTH", 4096)
    assert layer.chosen_path(2001, cuda) == "gemm"
    assert layer.chosen_path(2003, cuda) == "gemm"  # a prime length is no obstacle
    assert layer.chosen_path(8192, cuda) == "fft"
    assert layer.chosen_path(2001, cpu) == "fft"
    monkeypatch.setattr(fourier, "FACTORED_MIN_LENGTH", 8192)
    assert layer.chosen_path(8192, cuda) == "factored"
    assert layer.chosen_path(2000, cuda) == "gemm"  # gemm comes first up to its length


@pytest.mark.parametrize("path", ["gemm", "fft_traced"])
def test_path_compiles_into_one_graph(path: str) -> None:
    import torch._dynamo

    layer = FourierMixing(6)
    layer.mixing_path = path
    x = torch.randn(2, 30, 6, requires_grad=True)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(layer)(x)
    assert explained.graph_count == 1 and explained.graph_break_count == 0
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, layer(x), atol=1e-5, rtol=1e-5)
    (g,) = torch.autograd.grad(out.pow(2).sum(), x)
    (ref,) = torch.autograd.grad(layer(x).pow(2).sum(), x)
    torch.testing.assert_close(g, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("path", ["fft", "fft_traced", "gemm", "factored"])
@pytest.mark.parametrize("n", [1, 7, 12, 64])
def test_ortho_is_the_unitary_dft_on_every_path(n: int, path: str) -> None:
    """``fft_norm="ortho"``: Re(F_N x F_D^T) / sqrt(N D) by the dense matrices, masked tokens
    reaching no output, and no output longer than its input."""
    d = 6
    layer = FourierMixing(d, fft_norm="ortho")
    layer.mixing_path = path
    x = torch.randn(2, n, d, dtype=torch.float64)
    mask = torch.rand(2, n) > 0.3
    mask[:, 0] = True
    m = mask.numpy()[:, :, None].astype(float)
    out = layer(x, mask)
    ref = _real_dft2(x.numpy() * m) * m / np.sqrt(n * d)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-10)
    x2 = x.clone()
    x2[~mask] = 1e3
    torch.testing.assert_close(layer(x2, mask), out, atol=1e-10, rtol=0)
    assert (out.norm(dim=(1, 2)) <= (x * mask[..., None]).norm(dim=(1, 2)) + 1e-9).all()


def test_fft_norm_from_the_config_and_bad_values_refused() -> None:
    layer = build_layer({"name": "fnet", "hidden_dim": 8, "fft_norm": "ortho"})
    assert isinstance(layer, FourierMixing) and layer.fft_norm == "ortho"
    assert FourierMixing.from_config(FNetMixingConfig(hidden_dim=8)).fft_norm == "backward"
    with pytest.raises(ValueError, match="fft_norm"):
        FourierMixing(8, fft_norm="forward")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fft_norm"):
        FNetMixingConfig(hidden_dim=8, fft_norm="forward")  # type: ignore[arg-type]
