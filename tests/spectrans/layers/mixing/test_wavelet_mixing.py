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
