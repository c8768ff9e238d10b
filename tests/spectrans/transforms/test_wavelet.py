"""DWT / IDWT against PyWavelets: coefficients, reconstruction, orthonormality of the LST kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.transforms import wavelet as W

pywt = pytest.importorskip("pywt")
PYWT_MODE = {"symmetric": "symmetric", "periodic": "periodization"}


@pytest.mark.parametrize("name", W.WAVELETS)
def test_filter_bank_is_pywt(name: str) -> None:
    ours = [f.numpy() for f in W.filter_bank(name)]
    for a, b in zip(ours, pywt.Wavelet(name).filter_bank, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-15)


@pytest.mark.filterwarnings("ignore:Level value")
@pytest.mark.parametrize("name", ["haar", "db2", "db3", "db4", "db6", "db8"])
@pytest.mark.parametrize("mode", ["symmetric", "periodic"])
@pytest.mark.parametrize("n", [15, 16, 37, 64, 100])
def test_wavedec_and_waverec_match_pywt(name: str, mode: str, n: int) -> None:
    x = torch.randn(3, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    levels = max(1, pywt.dwt_max_level(n, pywt.Wavelet(name).dec_len))
    ref = pywt.wavedec(x.numpy(), name, mode=PYWT_MODE[mode], level=levels)
    ours = W.wavedec(x, name, levels, mode)
    assert [c.shape[-1] for c in ours] == [r.shape[-1] for r in ref]
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-12)
    ref_rec = pywt.waverec(ref, name, mode=PYWT_MODE[mode])
    np.testing.assert_allclose(W.waverec(ours, name, mode).numpy(), ref_rec, atol=1e-12)
    assert (W.waverec(ours, name, mode, length=n) - x).abs().max() <= 1e-12  # perfect recon


@pytest.mark.parametrize("mode", ["symmetric", "periodic"])
def test_single_level_along_another_axis(mode: str) -> None:
    x = torch.randn(5, 21, 2, dtype=torch.float64)
    a, d = W.dwt(x, "db3", mode, dim=1)
    ra, rd = pywt.dwt(x.numpy(), "db3", mode=PYWT_MODE[mode], axis=1)
    np.testing.assert_allclose(a.numpy(), ra, atol=1e-12)
    np.testing.assert_allclose(d.numpy(), rd, atol=1e-12)
    assert (W.idwt(a, d, "db3", mode, length=21, dim=1) - x).abs().max() <= 1e-12


@pytest.mark.parametrize("n", [1, 7, 8, 13, 64])
def test_lst_wavelet_transform_is_orthonormal(n: int) -> None:
    t = W.WaveletTransform("db4", levels=3, dim=-2)
    p = t.num_frequencies(n)
    assert p % 8 == 0 and p >= n
    eye = torch.eye(p, dtype=torch.float64)
    m = t.transform(eye)  # columns: T e_j
    assert (m.T @ m - eye).abs().max() <= 1e-13
    assert (t.inverse(m) - eye).abs().max() <= 1e-13  # T^T T = I
    x = torch.randn(2, n, 3, dtype=torch.float64)
    assert (t.inverse(t.transform(x))[:, :n] - x).abs().max() <= 1e-13


def test_bad_names_fail_with_one_sentence() -> None:
    with pytest.raises(ValueError, match="unknown wavelet 'db9'; choose one of"):
        W.dwt(torch.zeros(4), "db9")
    with pytest.raises(ValueError, match="unknown boundary mode"):
        W.dwt(torch.zeros(4), "db2", "zero")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["symmetric", "periodic"])
@pytest.mark.parametrize("n", [7, 16, 33, 128])
def test_matrices_are_the_transforms(mode: str, n: int) -> None:
    torch.manual_seed(n)
    levels = min(3, W.max_level(n, "db3"))
    a, r = W.wavelet_matrices(n, "db3", levels, mode, torch.float64, torch.device("cpu"))
    sizes = W.band_lengths(n, "db3", levels, mode)
    assert a.shape == (sum(sizes), n) and r.shape == (n, sum(sizes))
    x = torch.randn(4, n, dtype=torch.float64)
    coeffs = W.wavedec(x, "db3", levels, mode)
    assert [c.shape[-1] for c in coeffs] == sizes
    assert (x @ a.t() - torch.cat(coeffs, dim=-1)).abs().max() <= 1e-12
    c = torch.randn(4, sum(sizes), dtype=torch.float64)
    ref = W.waverec(list(torch.split(c, sizes, dim=-1)), "db3", mode, n)
    assert (c @ r.t() - ref).abs().max() <= 1e-12
    assert (r @ a - torch.eye(n, dtype=torch.float64)).abs().max() <= 1e-12
