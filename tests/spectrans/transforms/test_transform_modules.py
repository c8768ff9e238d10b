"""nn.Module wrappers: transform along dim -2, inverse round trips, vs scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sfft
import torch

from spectrans.transforms import DCT, DST, FFTTransform, HadamardTransform


@pytest.mark.parametrize(
    "module,ref",
    [
        (DCT(2), lambda a: sfft.dct(a, type=2, norm="ortho", axis=-2)),
        (DCT(3), lambda a: sfft.dct(a, type=3, norm="ortho", axis=-2)),
        (DST(1), lambda a: sfft.dst(a, type=1, norm="ortho", axis=-2)),
        (DST(2), lambda a: sfft.dst(a, type=2, norm="ortho", axis=-2)),
    ],
)
def test_sequence_axis_and_round_trip(module: torch.nn.Module, ref) -> None:
    x = torch.randn(2, 11, 3, dtype=torch.float64)
    y = module.transform(x)
    np.testing.assert_allclose(y.numpy(), ref(x.numpy()), atol=1e-10)
    torch.testing.assert_close(module.inverse(y), x, atol=1e-12, rtol=0)
    assert not list(module.parameters())


def test_hadamard_and_fft_modules_round_trip() -> None:
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    had = HadamardTransform()
    coeffs = had.transform(x)
    assert coeffs.shape == (2, 16, 3) and had.num_frequencies(12) == 16
    torch.testing.assert_close(had.inverse(coeffs)[:, :12], x, atol=1e-12, rtol=0)
    raw = HadamardTransform(normalized=False)
    torch.testing.assert_close(raw.inverse(raw.transform(x))[:, :12], x, atol=1e-12, rtol=0)
    fft = FFTTransform()
    spec = fft.transform(x[:, :11])
    np.testing.assert_allclose(
        spec.numpy(), np.fft.rfft(x[:, :11].numpy(), axis=-2, norm="ortho"), atol=1e-12
    )
    torch.testing.assert_close(fft.inverse(spec, 11), x[:, :11], atol=1e-12, rtol=0)


def test_bad_module_options_raise() -> None:
    with pytest.raises(ValueError, match="type=5"):
        DCT(5)
    with pytest.raises(ValueError, match="norm='x'"):
        FFTTransform(norm="x")
