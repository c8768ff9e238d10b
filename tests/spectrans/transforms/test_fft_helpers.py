"""FFT helpers vs dense oracles: FNet 2-D mixing, circular and causal convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.transforms.fft import causal_conv, circular_conv, fourier_mix_2d


def test_fourier_mix_2d_matches_dft_matrices() -> None:
    x = torch.randn(2, 7, 5, dtype=torch.float64)
    fn = np.exp(-2j * np.pi * np.outer(np.arange(7), np.arange(7)) / 7)
    fd = np.exp(-2j * np.pi * np.outer(np.arange(5), np.arange(5)) / 5)
    ref = np.real(np.einsum("ij,bjk,lk->bil", fn, x.numpy(), fd))
    np.testing.assert_allclose(fourier_mix_2d(x).numpy(), ref, atol=1e-10)
    assert fourier_mix_2d(x.bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_causal_and_circular_conv_match_dense(n: int) -> None:
    x = torch.randn(3, n, 4, dtype=torch.float64)
    h = torch.randn(n, 4, dtype=torch.float64)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    lag = i - j
    causal = np.where(lag >= 0, 1.0, 0.0)[..., None] * h.numpy()[np.clip(lag, 0, None)]
    np.testing.assert_allclose(
        causal_conv(x, h, dim=-2).numpy(), np.einsum("ijc,bjc->bic", causal, x.numpy()), atol=1e-10
    )
    circ = h.numpy()[lag % n]
    np.testing.assert_allclose(
        circular_conv(x, h, dim=-2).numpy(), np.einsum("ijc,bjc->bic", circ, x.numpy()), atol=1e-10
    )


def test_causal_conv_gradcheck() -> None:
    x = torch.randn(2, 5, 1, dtype=torch.float64, requires_grad=True)
    h = torch.randn(5, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: causal_conv(a, b, dim=-2), (x, h))
