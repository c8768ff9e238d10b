"""Positional encodings: sinusoidal and image oracles, learned limit, rotary/alibi to the mixer."""

from __future__ import annotations

import math

import pytest
import torch

from spectrans.config.layers import FNetMixingConfig, LSTAttentionConfig, SoftmaxAttentionConfig
from spectrans.layers.positional import (
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    apply_positional_to_mixer,
    build_positional_encoding,
    sinusoidal_table,
)


def test_sinusoidal_matches_the_formula() -> None:
    n, d = 7, 6
    table = sinusoidal_table(n, d, dtype=torch.float64)
    for p in range(n):
        for i in range(d // 2):
            angle = p / 10000 ** (2 * i / d)
            assert table[p, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-12)
            assert table[p, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-12)


def test_sinusoidal_works_at_any_length_and_odd_width() -> None:
    x = torch.zeros(1, 5000, 5)
    out = SinusoidalPositionalEncoding(5)(x)
    assert out.shape == x.shape
    assert torch.allclose(out[0, 3], sinusoidal_table(5000, 5)[3])


def _sincos(pos: int, i: int, width: int) -> float:
    """Entry ``i`` of the width-``width`` sinusoidal encoding of ``pos``, written out."""
    angle = pos / 10000 ** (2 * (i // 2) / width)
    return math.sin(angle) if i % 2 == 0 else math.cos(angle)


@pytest.mark.parametrize(("side", "d"), [(1, 4), (3, 6), (4, 7), (5, 8)])
def test_image_sinusoidal_encodes_row_then_column(side: int, d: int) -> None:
    x = torch.zeros(2, side * side, d, dtype=torch.float64)
    out = SinusoidalPositionalEncoding(d, image=True)(x)
    row_dim = (d + 1) // 2
    for p in range(side * side):
        r, c = divmod(p, side)  # row-major pixel p
        for i in range(d):
            want = _sincos(r, i, row_dim) if i < row_dim else _sincos(c, i - row_dim, d - row_dim)
            assert out[1, p, i].item() == pytest.approx(want, abs=1e-12)


def test_image_sinusoidal_tells_pixels_apart_and_refuses_a_non_square_length() -> None:
    table = build_positional_encoding("sinusoidal2d", 8, 0)(torch.zeros(1, 16, 8))[0]  # (16, 8)
    assert torch.cdist(table, table).add(torch.eye(16)).min() > 0  # every pixel distinct
    with pytest.raises(ValueError) as info:
        build_positional_encoding("sinusoidal2d", 8, 0)(torch.zeros(1, 15, 8))
    message = str(info.value)
    assert "15 positions" in message and "not a perfect square" in message
    assert "\n" not in message


def test_learned_adds_its_table_and_fails_over_its_limit() -> None:
    torch.manual_seed(0)
    pe = LearnedPositionalEncoding(4, 8)
    x = torch.randn(2, 8, 4)
    assert torch.allclose(pe(x), x + pe.table[None])
    with pytest.raises(ValueError) as info:
        pe(torch.randn(2, 9, 4))
    message = str(info.value)
    assert "limit of 8" in message and "model.max_sequence_length" in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["rotary", "alibi", "none"])
def test_rotary_alibi_none_leave_hidden_states_alone(kind: str) -> None:
    x = torch.randn(2, 5, 4)
    assert torch.equal(build_positional_encoding(kind, 4, 8)(x), x)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown positional encoding 'absolute'"):
        build_positional_encoding("absolute", 4, 8)


def test_rotary_and_alibi_become_mixer_options() -> None:
    config = SoftmaxAttentionConfig(hidden_dim=8, num_heads=2)
    rotary = apply_positional_to_mixer("rotary", config)
    alibi = apply_positional_to_mixer("alibi", config)
    assert isinstance(rotary, SoftmaxAttentionConfig) and rotary.use_rope and not rotary.alibi
    assert isinstance(alibi, SoftmaxAttentionConfig) and alibi.alibi and not alibi.use_rope
    assert apply_positional_to_mixer("sinusoidal", config) is config
    assert not config.use_rope and not config.alibi  # the input is never changed


def test_mixers_without_the_option_refuse_in_one_sentence() -> None:
    with pytest.raises(ValueError, match="no queries and keys to rotate") as info:
        apply_positional_to_mixer("rotary", FNetMixingConfig(hidden_dim=8))
    assert "'fnet' token mixer" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match="no attention scores to bias"):
        apply_positional_to_mixer("alibi", LSTAttentionConfig(hidden_dim=8, num_heads=2))
