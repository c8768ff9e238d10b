"""GFNet global filter vs dense circulant / Toeplitz oracles; masks and causality exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.config.layers.mixing import GlobalFilterMixingConfig
from spectrans.layers.mixing.global_filter import GlobalFilterMixing
from spectrans.registry import build_layer


def _filter_bins(weight: np.ndarray, bins: int) -> np.ndarray:
    """Complex filter (bins, D), linear interpolation over normalised frequency."""
    grid = np.linspace(0, 1, weight.shape[0])
    f = np.arange(bins) / (bins - 1) if bins > 1 else np.zeros(1)
    re = np.stack([np.interp(f, grid, weight[:, c, 0]) for c in range(weight.shape[1])], 1)
    im = np.stack([np.interp(f, grid, weight[:, c, 1]) for c in range(weight.shape[1])], 1)
    return re + 1j * im


def _oracle(layer: GlobalFilterMixing, x: np.ndarray, causal: bool) -> np.ndarray:
    n, dims = x.shape[1], x.shape[2]
    weight = layer.weight.detach().numpy()
    length = 2 * n if causal else n
    eye = np.eye(length)
    out = np.zeros_like(x)
    for c in range(dims):  # dense matrix of irfft(W * rfft(.)) per channel
        w = _filter_bins(weight, length // 2 + 1)[:, c]
        M = np.fft.irfft(np.fft.rfft(eye, axis=0) * w[:, None], n=length, axis=0)
        if causal:
            taps = M[:n, 0]
            i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
            M = np.where(i >= j, taps[np.clip(i - j, 0, None)], 0.0)
        out[:, :, c] = np.einsum("ij,bj->bi", M, x[:, :, c])
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [1, 2, 7, 16, 100])
def test_matches_dense_oracle(n: int, causal: bool) -> None:
    layer = GlobalFilterMixing(3, causal=causal, max_sequence_length=16).double()
    x = torch.randn(2, n, 3, dtype=torch.float64)
    np.testing.assert_allclose(
        layer(x).detach().numpy(), _oracle(layer, x.numpy(), causal), atol=1e-10
    )


@pytest.mark.parametrize("causal", [False, True])
def test_mask_exact_float32(causal: bool) -> None:
    layer = GlobalFilterMixing(8, causal=causal, max_sequence_length=32)
    x = torch.randn(2, 30, 8)
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[0, 20:] = False
    mask[1, 1::2] = False
    x2 = x.clone()
    x2[~mask] = torch.randn(int((~mask).sum()), 8) * 100
    y1, y2 = layer(x, mask), layer(x2, mask)
    assert (y1[mask] - y2[mask]).abs().max() <= 1e-6
    assert y1[~mask].abs().max() == 0


def test_causal_exact_float32_and_gradients() -> None:
    layer = GlobalFilterMixing(8, causal=True, max_sequence_length=32)
    x = torch.randn(2, 40, 8)
    x2 = x.clone()
    x2[:, 18:] = torch.randn(2, 22, 8) * 100
    y1, y2 = layer(x), layer(x2)
    assert (y1[:, :18] - y2[:, :18]).abs().max() <= 1e-6
    assert (y1[:, 18:] - y2[:, 18:]).abs().max() > 1e-3
    y1.pow(2).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_defaults_and_registry() -> None:
    out, weights = GlobalFilterMixing()(torch.randn(1, 9, 512), return_attention=True)
    assert out.shape == (1, 9, 512) and weights is None
    layer = build_layer({"name": "global_filter", "hidden_dim": 16, "max_sequence_length": 64})
    assert type(layer) is GlobalFilterMixing and layer.weight.shape == (33, 16, 2)
    cfg = GlobalFilterMixingConfig(hidden_dim=8, causal=True)
    assert GlobalFilterMixing.from_config(cfg).causal
