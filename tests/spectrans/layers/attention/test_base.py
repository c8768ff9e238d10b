"""spectrans.layers.attention.base.init_linear: the weight statistics of each init mode."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spectrans.layers.attention.base import init_linear


def _linear(fan_in: int, fan_out: int, mode: str) -> nn.Linear:
    torch.manual_seed(0)
    layer = nn.Linear(fan_in, fan_out)
    init_linear(layer, mode)
    return layer


@pytest.mark.parametrize(("fan_in", "fan_out"), [(32, 16), (512, 1024), (64, 2)])
def test_xavier_is_uniform_with_the_glorot_bound(fan_in: int, fan_out: int) -> None:
    """Xavier-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), so std a / sqrt(3)."""
    layer = _linear(fan_in, fan_out, "xavier")
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    w = layer.weight.detach()
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.9 * bound  # fills the interval, not a narrower law
    assert w.std().item() == pytest.approx(bound / math.sqrt(3.0), rel=0.15)
    assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize(
    ("mode", "std"),
    [("truncnormal002", lambda fan_in: 0.02), ("truncnormal", lambda fan_in: fan_in**-0.5)],
)
def test_truncated_normal_modes_stay_within_two_std(mode: str, std) -> None:
    layer = _linear(256, 512, mode)
    w = layer.weight.detach()
    assert w.abs().max() <= 2 * std(256) + 1e-7
    # a normal truncated at 2 std keeps 0.88 of its std
    assert w.std().item() == pytest.approx(0.88 * std(256), rel=0.05)


def test_torch_mode_leaves_pytorch_default() -> None:
    torch.manual_seed(0)
    expected = nn.Linear(32, 8).weight.detach().clone()
    assert torch.equal(_linear(32, 8, "torch").weight.detach(), expected)


def test_unknown_mode_is_one_sentence() -> None:
    with pytest.raises(ValueError, match="unknown init_weights mode 'glorot'"):
        _linear(4, 4, "glorot")
