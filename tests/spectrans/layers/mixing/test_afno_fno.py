"""AFNO and FNO mixing against dense DFT-matrix references in float64; masks exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.layers.mixing.afno import AFNOMixing
from spectrans.layers.mixing.fno import FNOMixing
from spectrans.registry import build_layer


def _dft(n: int) -> np.ndarray:
    """Orthonormal forward DFT rows for the rFFT bins: (n//2+1, n)."""
    k = np.arange(n // 2 + 1)[:, None]
    return np.exp(-2j * np.pi * k * np.arange(n)[None] / n) / np.sqrt(n)


def _idft_real(z: np.ndarray, n: int) -> np.ndarray:
    """y_t = n^{-1/2} sum_k c_k Re(Z_k e^{2 pi i k t / n}) over the given bins; z (B, K, D)."""
    k = np.arange(z.shape[1])
    c = np.where((k == 0) | ((n % 2 == 0) & (k == n // 2)), 1.0, 2.0)
    phase = np.exp(2j * np.pi * np.arange(n)[:, None] * k[None] / n)  # (n, K)
    return np.einsum("tk,bkd->btd", phase * c, z).real / np.sqrt(n)


def _shrink(v: np.ndarray, lam: float) -> np.ndarray:
    return np.sign(v) * np.maximum(np.abs(v) - lam, 0)


def _afno_oracle(layer: AFNOMixing, x: np.ndarray, modes: int | None) -> np.ndarray:
    n, d = x.shape[1], x.shape[2]
    spec = np.einsum("kt,btd->bkd", _dft(n), x)
    k = spec.shape[1] if modes is None else min(modes, spec.shape[1])
    spec = spec[:, :k]

    def cplx(p: torch.Tensor) -> np.ndarray:
        a = p.detach().double().numpy()
        return a[..., 0] + 1j * a[..., 1]

    w1, b1, w2, b2 = cplx(layer.w1), cplx(layer.b1), cplx(layer.w2), cplx(layer.b2)
    nb = layer.num_blocks
    out = np.zeros_like(spec)
    for c in range(nb):
        sl = slice(c * d // nb, (c + 1) * d // nb)
        o1 = spec[:, :, sl] @ w1[c] + b1[c]
        o1 = np.maximum(o1.real, 0) + 1j * np.maximum(o1.imag, 0)
        o2 = o1 @ w2[c] + b2[c]
        lam = layer.sparsity_threshold
        out[:, :, sl] = _shrink(o2.real, lam) + 1j * _shrink(o2.imag, lam)
    return _idft_real(out, n)


@pytest.mark.parametrize("n", [1, 8, 15, 16, 33])
@pytest.mark.parametrize("modes", [None, 3])
@pytest.mark.parametrize("path", ["blocks", "dense"])
def test_afno_matches_dense_dft_reference(n: int, modes: int | None, path: str) -> None:
    torch.manual_seed(n)
    layer = AFNOMixing(hidden_dim=8, num_blocks=2, hidden_size_factor=2, modes=modes).double()
    layer.mixing_path = path
    with torch.no_grad():  # larger weights so the ReLU and the shrinkage both act
        for p in layer.parameters():
            p.mul_(25.0)
    x = torch.randn(2, n, 8, dtype=torch.float64)
    got = layer(x).detach().numpy()
    ref = _afno_oracle(layer, x.numpy(), modes)
    assert np.abs(got - ref).max() <= 1e-12 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("n", [1, 8, 15, 16, 33])
@pytest.mark.parametrize("modes", [1, 4, 40])
def test_fno_matches_direct_dft_sum(n: int, modes: int) -> None:
    torch.manual_seed(n)
    layer = FNOMixing(hidden_dim=6, modes=modes).double()
    x = torch.randn(2, n, 6, dtype=torch.float64)
    xn = x.numpy()
    spec = np.einsum("kt,btd->bkd", _dft(n), xn)
    k = min(modes, n // 2 + 1)
    w = layer.weight.detach().numpy()
    w = w[..., 0] + 1j * w[..., 1]
    mixed = np.einsum("bki,kio->bko", spec[:, :k], w[:k])
    ref = _idft_real(mixed, n)
    assert np.abs(layer(x).detach().numpy() - ref).max() <= 1e-12


@pytest.mark.parametrize("name", ["afno", "fno"])
def test_padding_is_exact_and_causal_refused(name: str) -> None:
    layer = build_layer({"name": name, "hidden_dim": 16}).double()
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    mask = torch.arange(11)[None] < torch.tensor([[11], [6]])
    other = x.clone()
    other[~mask] = torch.randn(int((~mask).sum()), 16, dtype=torch.float64)
    a, b = layer(x, mask), layer(other, mask)
    assert (a - b).abs().max() == 0 and (a[~mask] == 0).all()
    with pytest.raises(ValueError, match="causal"):
        build_layer({"name": name, "hidden_dim": 16, "causal": True})


def test_afno_blocks_must_divide_width() -> None:
    with pytest.raises(Exception, match="divisible by num_blocks"):
        build_layer({"name": "afno", "hidden_dim": 12, "num_blocks": 5})


@pytest.mark.parametrize("modes", [None, 3])
@pytest.mark.parametrize("path", ["blocks", "dense"])
def test_afno_keeps_complex_values_at_the_ffts_only(modes: int | None, path: str) -> None:
    """Between the rFFT and the inverse rFFT every computed tensor is real (only views are
    complex), so a compiler never has to generate a kernel over complex elements."""
    from torch.fx.experimental.proxy_tensor import make_fx

    layer = AFNOMixing(hidden_dim=16, num_blocks=4, modes=modes)
    layer.mixing_path = path
    graph = make_fx(lambda x: layer.mix(x))(torch.randn(2, 12, 16)).graph
    complex_ops = {
        str(node.target)
        for node in graph.nodes
        if isinstance(node.meta.get("val"), torch.Tensor) and node.meta["val"].is_complex()
    }
    views = {"aten.alias.default", "aten.view.default", "aten.slice.Tensor"}
    assert complex_ops - views == {"aten._fft_r2c.default", "aten.view_as_complex.default"}


@pytest.mark.parametrize("modes", [None, 5])
@pytest.mark.parametrize(("width", "blocks", "factor"), [(8, 2, 2), (12, 3, 1), (32, 8, 1)])
def test_afno_dense_path_equals_blocks_with_gradients(
    modes: int | None, width: int, blocks: int, factor: int
) -> None:
    """Same outputs and the same gradients for the input and every weight, with a mask."""
    torch.manual_seed(width)
    layer = AFNOMixing(width, num_blocks=blocks, hidden_size_factor=factor, modes=modes).double()
    with torch.no_grad():  # larger weights so the ReLU and the shrinkage both act
        for p in layer.parameters():
            p.mul_(25.0)
    x = torch.randn(3, 21, width, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(3, 21) > 0.2
    w = torch.randn(3, 21, width, dtype=torch.float64)
    results = {}
    for path in ("blocks", "dense"):
        layer.mixing_path = path
        out = layer(x, mask)
        grads = torch.autograd.grad((out * w).sum(), [x, *layer.parameters()])
        results[path] = (out, grads)
    torch.testing.assert_close(results["dense"][0], results["blocks"][0], atol=1e-12, rtol=0)
    for got, ref in zip(results["dense"][1], results["blocks"][1], strict=True):
        torch.testing.assert_close(got, ref, atol=1e-11, rtol=1e-10)


def test_afno_auto_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import spectrans.layers.mixing.afno as afno

    narrow, wide = AFNOMixing(32, num_blocks=8), AFNOMixing(512, num_blocks=8)
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert afno.DENSE_MAX_WIDTH == 32  # the Pathfinder-32 width, the one timed
    assert narrow.chosen_path(1024, cuda) == "dense"
    assert wide.chosen_path(1024, cuda) == "blocks"
    assert narrow.chosen_path(1024, cpu) == "blocks"
    monkeypatch.setattr(afno, "DENSE_MAX_WIDTH", None)
    assert narrow.chosen_path(1024, cuda) == "blocks"
