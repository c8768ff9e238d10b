"""FFT helpers vs dense oracles: FNet 2-D mixing, circular and causal convolution, lean rFFT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.transforms.fft import causal_conv, circular_conv, fourier_mix_2d, rfft_lean


def _dft(n: int) -> np.ndarray:
    return np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n)


HALF_SPECTRUM = torch.ops.spectrans.fourier_mix_2d.default
"""The half-spectrum op behind :func:`fourier_mix_2d` from its width threshold on."""


@pytest.mark.parametrize("mix", [fourier_mix_2d, HALF_SPECTRUM], ids=["public", "half-spectrum"])
@pytest.mark.parametrize(("n", "d"), [(1, 1), (2, 3), (7, 5), (8, 8), (100, 6), (9, 2), (16, 7)])
def test_fourier_mix_2d_matches_dft_matrices(mix: object, n: int, d: int) -> None:
    x = torch.randn(2, n, d, dtype=torch.float64, requires_grad=True)
    operator = np.real(np.einsum("ij,lk->iljk", _dft(n), _dft(d)))  # y[i,l] = sum op x[j,k]
    y = mix(x)  # type: ignore[operator]
    ref = np.einsum("iljk,bjk->bil", operator, x.detach().numpy())
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-10)
    g = torch.randn_like(y)
    (grad,) = torch.autograd.grad(y, x, g)
    np.testing.assert_allclose(
        grad.numpy(), np.einsum("iljk,bil->bjk", operator, g.numpy()), atol=1e-10
    )


def test_fourier_mix_2d_takes_the_half_spectrum_from_its_width_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import spectrans.transforms.fft as fft

    calls: list[int] = []
    op = fft._fourier_mix_2d_op
    monkeypatch.setattr(fft, "_fourier_mix_2d_op", lambda t: calls.append(1) or op(t))
    x = torch.randn(3, 12, 10, dtype=torch.float64)
    ref = fourier_mix_2d(x)  # default threshold: fft2 at width 10
    assert calls == []
    monkeypatch.setattr(fft, "HALF_SPECTRUM_MIN_WIDTH", 10)
    torch.testing.assert_close(fourier_mix_2d(x), ref, atol=1e-12, rtol=0)
    assert calls == [1]


def test_half_spectrum_op_in_half_precision_saves_nothing() -> None:
    x = torch.randn(3, 12, 10, requires_grad=True)
    assert HALF_SPECTRUM(x.bfloat16()).dtype == torch.bfloat16
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = HALF_SPECTRUM(x)
    assert saved == []
    torch.library.opcheck(HALF_SPECTRUM, (x,))
    y.pow(2).sum().backward()
    ref = HALF_SPECTRUM(x.detach().double()).float()
    torch.testing.assert_close(
        x.grad, HALF_SPECTRUM(2 * ref.double()).float(), atol=1e-3, rtol=1e-4
    )


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


def dense_rfft(x: torch.Tensor, length: int, norm: str) -> torch.Tensor:
    """Oracle along dim 1: ``X_k = s sum_n x_n exp(-2 pi i k n / L)`` by DFT matrices (float64)."""
    n = x.shape[1]
    k = torch.arange(length // 2 + 1, dtype=torch.float64)[:, None]  # (bins, 1)
    phase = -2 * np.pi * k * torch.arange(n, dtype=torch.float64)[None, :] / length  # (bins, N)
    scale = {"backward": 1.0, "ortho": length**-0.5, "forward": 1.0 / length}[norm]
    real = torch.einsum("kn,bnc->bkc", torch.cos(phase), x)  # (B, bins, C)
    imag = torch.einsum("kn,bnc->bkc", torch.sin(phase), x)  # (B, bins, C)
    return torch.complex(real, imag) * scale


@pytest.mark.parametrize("n", [1, 2, 7, 8, 100])
@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
def test_rfft_lean_values_and_gradients_match_the_dense_dft(n: int, pad: int, norm: str) -> None:
    torch.manual_seed(n + pad)
    x = torch.randn(3, n, 4, dtype=torch.float64, requires_grad=True)  # (B, N, C)
    length = n + pad
    out = rfft_lean(x, dim=1, n=length, norm=norm)  # (B, bins, C)
    ref = dense_rfft(x, length, norm)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    grad = torch.randn_like(ref)
    (mine,) = torch.autograd.grad(out, x, grad)
    (oracle,) = torch.autograd.grad(ref, x, grad)
    torch.testing.assert_close(mine, oracle, atol=1e-10, rtol=0)


def test_rfft_lean_matches_torch_along_any_dim_and_saves_nothing() -> None:
    x = torch.randn(4, 6, 9, requires_grad=True)  # float32
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = rfft_lean(x, dim=-1)
    assert saved == []  # autograd's rfft would keep x
    ref = torch.fft.rfft(x, dim=-1)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(ref)
    torch.testing.assert_close(
        torch.autograd.grad(out, x, grad)[0], torch.autograd.grad(ref, x, grad)[0]
    )


def test_rfft_lean_refuses_a_short_length_and_an_unknown_norm() -> None:
    x = torch.randn(2, 8)
    with pytest.raises(ValueError, match="shorter"):
        rfft_lean(x, n=4)
    with pytest.raises(ValueError, match="norm"):
        rfft_lean(x, norm="unitary")
