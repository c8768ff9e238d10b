"""The shared input check (``check_input``) of every registered token mixer.

Each case gets one ``ValueError`` sentence naming the shape and dtype received, never a
silently wrong output: float (additive) masks, integer inputs, wrong widths, N = 0, B = 0.
"""

from __future__ import annotations

import pytest
import torch

from spectrans.layers.attention.base import check_input
from spectrans.registry import build_layer, names

HIDDEN = 16


def _layer(name: str) -> torch.nn.Module:
    config = {"name": name, "hidden_dim": HIDDEN}
    if name in ("softmax", "performer", "kernel", "spectral", "mixed", "lst", "dct", "hadamard"):
        config["num_heads"] = 2
    try:
        layer = build_layer(config)
    except Exception:  # noqa: BLE001 - a mixer without heads
        layer = build_layer({"name": name, "hidden_dim": HIDDEN})
    return layer.eval()


MIXERS = names()


def _one_sentence(message: str) -> None:
    assert "\n" not in message and len(message) < 400


@pytest.mark.parametrize("name", MIXERS)
def test_float_additive_mask_is_refused(name: str) -> None:
    x = torch.randn(2, 5, HIDDEN)
    additive = torch.zeros(2, 5)
    additive[:, 3:] = float("-inf")
    with pytest.raises(ValueError, match=r"mask must be a boolean .* dtype float32") as err:
        _layer(name)(x, mask=additive)
    assert "(2, 5)" in str(err.value)
    _one_sentence(str(err.value))


@pytest.mark.parametrize("name", MIXERS)
def test_boolean_mask_is_accepted(name: str) -> None:
    x = torch.randn(2, 5, HIDDEN)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = _layer(name)(x, mask=mask)
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", MIXERS)
def test_wrong_width_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=rf"hidden size 8 .* hidden_dim={HIDDEN}") as err:
        _layer(name)(torch.randn(2, 5, 8))
    _one_sentence(str(err.value))


@pytest.mark.parametrize("name", MIXERS)
@pytest.mark.parametrize("shape", [(2, 0, HIDDEN), (0, 5, HIDDEN)])
def test_empty_batch_or_sequence_is_refused(name: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"x is empty \(shape") as err:
        _layer(name)(torch.randn(*shape))
    _one_sentence(str(err.value))


@pytest.mark.parametrize("name", MIXERS)
def test_integer_input_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"floating-point .* dtype int64") as err:
        _layer(name)(torch.ones(2, 5, HIDDEN, dtype=torch.long))
    _one_sentence(str(err.value))


def test_check_input_returns_the_mask_and_names_shape_mismatch() -> None:
    x = torch.randn(1, 3, 4)
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert check_input(x, mask, 4) is mask
    assert check_input(x, None, 4) is None
    with pytest.raises(ValueError, match=r"mask has shape \(1, 4\)"):
        check_input(x, torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        check_input(torch.randn(3, 4), None)
