"""Fixtures of the attention-layer tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


def run_layer(
    layer: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None, recompute: bool | None
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Output, and the gradients of x and of every trainable parameter for a fixed cotangent,
    with ``layer.recompute_mixing = recompute``."""
    layer.recompute_mixing = recompute
    x = x.detach().requires_grad_()
    out = layer(x, mask)
    cotangent = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device)
    cotangent = cotangent.view_as(out)
    params = [p for p in layer.parameters() if p.requires_grad]
    return out, torch.autograd.grad(out, [x, *params], cotangent)


@pytest.fixture
def backwards_agree() -> Callable[..., None]:
    """Check that a layer's recomputing backward equals autograd's (float64 tolerances)."""

    def check(layer: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        want, want_grads = run_layer(layer, x, mask, recompute=False)
        got, got_grads = run_layer(layer, x, mask, recompute=True)
        torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
        assert len(got_grads) == len(want_grads)
        for g, w in zip(got_grads, want_grads, strict=True):
            torch.testing.assert_close(g, w, atol=1e-11, rtol=1e-11)

    return check


@pytest.fixture
def run() -> Callable[..., tuple[torch.Tensor, tuple[torch.Tensor, ...]]]:
    """:func:`run_layer`."""
    return run_layer
