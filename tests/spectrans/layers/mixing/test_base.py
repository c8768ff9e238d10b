"""MixingLayer: masking, precision and dropout around a subclass's mix."""

import pytest
import torch
from torch import Tensor

from spectrans.layers.mixing.base import MixingLayer


class _Spy(MixingLayer):
    """Mixes by a cumulative sum and records what mix received."""

    def __init__(self, **kwargs) -> None:
        super().__init__(hidden_dim=4, dropout=0.0, causal=False, init_weights="torch", **kwargs)
        self.seen: Tensor | None = None

    def mix(self, x: Tensor) -> Tensor:
        self.seen = x
        return x.cumsum(dim=1) + 1.0  # nonzero everywhere, also at padded positions


def test_mix_sees_zeros_at_padding_and_outputs_are_zero_there() -> None:
    layer = _Spy()
    x = torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out, weights = layer(x, mask, return_attention=True)
    assert weights is None
    assert (layer.seen[1, 3:] == 0).all() and torch.equal(layer.seen[0], x[0])
    assert (out[1, 3:] == 0).all()
    torch.testing.assert_close(out[0], x[0].cumsum(0) + 1.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
def test_mix_runs_in_the_compute_dtype_and_output_keeps_the_input_dtype(dtype) -> None:
    layer = _Spy()
    out = layer(torch.randn(1, 3, 4, dtype=dtype))
    assert layer.seen.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert out.dtype == dtype


def test_constructor_refuses_causal_and_bad_dropout() -> None:
    with pytest.raises(ValueError, match="causal=True"):
        MixingLayer(4, 0.0, True, "torch")
    with pytest.raises(ValueError, match="dropout"):
        MixingLayer(4, 1.5, False, "torch")
