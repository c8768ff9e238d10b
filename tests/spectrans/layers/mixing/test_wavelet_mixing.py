"""Wavelet mixing: identity at init, per-subband gains act on one scale, masks exact."""

from __future__ import annotations

import pytest
import torch

from spectrans.layers.mixing.wavelet import WaveletMixing
from spectrans.registry import build_layer
from spectrans.transforms.wavelet import max_level, wavedec, waverec


@pytest.mark.parametrize("mode", ["symmetric", "periodic"])
@pytest.mark.parametrize("mixing_mode", ["pointwise", "channel"])
@pytest.mark.parametrize("n", [3, 16, 37])
def test_identity_at_init(mode: str, mixing_mode: str, n: int) -> None:
    layer = WaveletMixing(hidden_dim=6, wavelet="db2", levels=3, mode=mode, mixing_mode=mixing_mode)
    x = torch.randn(2, n, 6, dtype=torch.float64)
    assert (layer.double()(x) - x).abs().max() <= 1e-12


@pytest.mark.parametrize("mode", ["symmetric", "periodic"])
def test_gains_scale_their_subband(mode: str) -> None:
    torch.manual_seed(0)
    layer = WaveletMixing(hidden_dim=3, wavelet="db3", levels=2, mode=mode).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(3, 3, dtype=torch.float64))
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    levels = min(2, max_level(40, "db3"))
    coeffs = wavedec(x.transpose(1, 2), "db3", levels, mode)
    gains = [layer.weight[0], *(layer.weight[j] for j in range(levels, 0, -1))]
    ref = waverec([c * g[None, :, None] for c, g in zip(coeffs, gains)], "db3", mode, 40)
    assert (layer(x) - ref.transpose(1, 2)).abs().max() <= 1e-12


def test_padding_is_exact_and_causal_refused() -> None:
    torch.manual_seed(1)
    layer = build_layer({"name": "wavelet", "hidden_dim": 4}).double()
    with torch.no_grad():
        layer.weight.normal_()
    x = torch.randn(2, 30, 4, dtype=torch.float64)
    mask = torch.arange(30)[None] < torch.tensor([[30], [11]])
    other = x.clone()
    other[~mask] = 5.0
    a, b = layer(x, mask), layer(other, mask)
    assert (a - b).abs().max() == 0 and (a[~mask] == 0).all()
    with pytest.raises(ValueError, match="causal"):
        build_layer({"name": "wavelet", "hidden_dim": 4, "causal": True})
    with pytest.raises(Exception, match="wavelet"):
        build_layer({"name": "wavelet", "hidden_dim": 4, "wavelet": "sym4"})


def _random_layer(mode: str, mixing_mode: str, width: int = 5) -> WaveletMixing:
    layer = WaveletMixing(
        hidden_dim=width, wavelet="db4", levels=3, mode=mode, mixing_mode=mixing_mode
    ).double()
    with torch.no_grad():
        layer.weight.normal_()
    return layer


@pytest.mark.parametrize("mode", ["symmetric", "periodic"])
@pytest.mark.parametrize("mixing_mode", ["pointwise", "channel"])
@pytest.mark.parametrize("n", [5, 16, 37, 64, 100])
def test_gemm_path_is_the_fast_operator(mode: str, mixing_mode: str, n: int) -> None:
    torch.manual_seed(n)
    layer = _random_layer(mode, mixing_mode)
    x = torch.randn(3, n, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(n)[None] < torch.tensor([[n], [max(1, n // 3)], [n - 1]])
    outs, grads = [], []
    for path in ("fast", "gemm"):
        layer.mixing_path = path
        y = layer(x, mask)
        (weight_grad, x_grad) = torch.autograd.grad((y * y.detach().cos()).sum(), [layer.weight, x])
        outs.append(y)
        grads.append((weight_grad, x_grad))
    assert (outs[0] - outs[1]).abs().max() <= 1e-12
    for fast, gemm in zip(grads[0], grads[1], strict=True):
        assert (fast - gemm).abs().max() <= 1e-10


def test_gemm_path_ignores_masked_tokens() -> None:
    torch.manual_seed(2)
    layer = _random_layer("symmetric", "pointwise")
    layer.mixing_path = "gemm"
    x = torch.randn(2, 40, 5, dtype=torch.float64)
    mask = torch.arange(40)[None] < torch.tensor([[40], [17]])
    other = x.clone()
    other[~mask] = -3.0
    a, b = layer(x, mask), layer(other, mask)
    assert (a - b).abs().max() == 0 and (a[~mask] == 0).all()


def test_gemm_path_in_bfloat16_autocast_follows_float64() -> None:
    torch.manual_seed(3)
    layer = _random_layer("symmetric", "pointwise", width=16)
    x = torch.randn(4, 200, 16, dtype=torch.float64)
    layer.mixing_path = "fast"
    ref = layer(x)  # float64
    layer.mixing_path = "gemm"
    layer32 = layer.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer32(x.float())
    err = (y.double() - ref).abs().max() / ref.abs().max()
    assert err <= 2**-6, err


def test_gemm_path_under_autocast_builds_its_matrices_in_the_autocast_dtype(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import spectrans.layers.mixing.wavelet as wavelet_module

    built: list[torch.dtype] = []
    original = wavelet_module.wavelet_operator

    def spy(*args: object) -> tuple[torch.Tensor, torch.Tensor]:
        analysis, synthesis = original(*args)  # type: ignore[arg-type]
        built.extend([analysis.dtype, synthesis.dtype])
        return analysis, synthesis

    monkeypatch.setattr(wavelet_module, "wavelet_operator", spy)
    layer = _random_layer("symmetric", "pointwise", width=8).float()
    layer.mixing_path = "gemm"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(torch.randn(2, 64, 8))  # float32 input, as after a LayerNorm under autocast
    layer(torch.randn(2, 64, 8))
    assert built == [torch.bfloat16, torch.bfloat16, torch.float32, torch.float32]


def test_path_choice() -> None:
    from spectrans.layers.mixing.wavelet import GEMM_MAX_LENGTH

    layer = WaveletMixing(hidden_dim=4)
    cuda = torch.device("cuda")
    assert layer.chosen_path(1024, torch.device("cpu")) == "fast"
    assert layer.chosen_path(1024, cuda) == "gemm"
    assert layer.chosen_path(GEMM_MAX_LENGTH, cuda) == "gemm"
    assert layer.chosen_path(GEMM_MAX_LENGTH + 1, cuda) == "fast"
    layer.mixing_path = "gemm"
    assert layer.chosen_path(65536, torch.device("cpu")) == "gemm"


def test_gemm_path_compiles_to_the_same_output() -> None:
    torch.manual_seed(4)
    layer = _random_layer("symmetric", "pointwise")
    layer.mixing_path = "gemm"
    x = torch.randn(2, 50, 5, dtype=torch.float64)
    torch._dynamo.reset()
    compiled = torch.compile(layer, backend="eager", fullgraph=True)
    assert (compiled(x) - layer(x)).abs().max() <= 1e-12
    torch._dynamo.reset()
