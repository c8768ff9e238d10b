"""check_divides: the one divisibility check of widths by heads or blocks."""

import pytest
from pydantic import ValidationError

from spectrans.config.core import check_divides
from spectrans.config.layers.attention import SoftmaxAttentionConfig
from spectrans.layers.attention.projections import resolve_head_dim


def test_check_divides_passes_and_names_the_count_and_the_fix() -> None:
    check_divides(512, 8, "num_heads")
    with pytest.raises(
        ValueError, match=r"^hidden_dim \(30\) must be divisible by num_blocks \(4\); fix it$"
    ):
        check_divides(30, 4, "num_blocks", "fix it")


def test_config_and_layer_give_the_same_sentence() -> None:
    with pytest.raises(ValidationError) as from_config:
        SoftmaxAttentionConfig(hidden_dim=30, num_heads=4)
    with pytest.raises(ValueError) as from_layer:
        resolve_head_dim(30, 4, None)
    assert str(from_layer.value) in str(from_config.value)
