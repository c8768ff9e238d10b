"""The per-bin complex filter against a dense float64 oracle: values, gradients, saved tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectrans.transforms.frequency_filter import frequency_filter


def _dense_operator(w: np.ndarray, n: int) -> np.ndarray:
    """(C, N, N): y[:, c] = op[c] @ x[:, c], built by filtering the identity's columns."""
    eye = np.eye(n)
    spec = np.fft.rfft(eye, axis=0)[:, :, None] * w[:, None, :]  # (K, N, C)
    return np.fft.irfft(spec, n=n, axis=0).transpose(2, 0, 1)  # (C, N, N)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 100])
def test_values_and_gradients_match_the_dense_operator(n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(3, n, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(n // 2 + 1, 4, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    y = frequency_filter(x, w)
    w_np = w.detach().numpy()
    op = _dense_operator(w_np[..., 0] + 1j * w_np[..., 1], n)  # (C, N, N)
    ref = np.einsum("cij,bjc->bic", op, x.detach().numpy())
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-12)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    grad_x, grad_w = torch.autograd.grad(y, (x, w), g)
    np.testing.assert_allclose(grad_x.numpy(), np.einsum("cij,bic->bjc", op, g.numpy()), atol=1e-12)
    # the reference gradient of the gains: autograd through torch.fft in float64
    wc = torch.view_as_complex(w.detach().clone().requires_grad_())
    ref_y = torch.fft.irfft(torch.fft.rfft(x.detach(), dim=-2) * wc, n=n, dim=-2)
    (ref_w,) = torch.autograd.grad(ref_y, wc, g)
    np.testing.assert_allclose(grad_w[..., 0].numpy(), ref_w.real.numpy(), atol=1e-12)
    np.testing.assert_allclose(grad_w[..., 1].numpy(), ref_w.imag.numpy(), atol=1e-12)


def test_gradcheck_and_only_the_inputs_are_saved() -> None:
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(frequency_filter, (x, w))
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        frequency_filter(x, w)
    assert sorted(t.numel() for t in saved) == sorted([w.numel(), x.numel()])
    torch.library.opcheck(torch.ops.spectrans.frequency_filter.default, (x, w))


def test_half_precision_input_and_shape_error() -> None:
    x = torch.randn(2, 9, 3).bfloat16().requires_grad_()
    w = torch.randn(5, 3, 2, requires_grad=True)
    y = frequency_filter(x, w)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16
    assert w.grad is not None and w.grad.dtype == torch.float32
    with pytest.raises(ValueError, match=r"expected \(5, 3, 2\)"):
        frequency_filter(x, torch.randn(4, 3, 2))


def test_compiled_matches_eager() -> None:
    x = torch.randn(2, 10, 3, requires_grad=True)
    w = torch.randn(6, 3, 2, requires_grad=True)

    def loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(frequency_filter(a * 2, b)).pow(2).sum()

    eager = torch.autograd.grad(loss(x, w), (x, w))
    compiled = torch.autograd.grad(torch.compile(loss)(x, w), (x, w))
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
