"""Model configs: discriminated union, strictness, cross-field checks."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from spectrans.config.models import EncoderModelConfig, LSTModelConfig, ModelConfigUnion

ADAPTER: TypeAdapter = TypeAdapter(ModelConfigUnion)


def test_union_picks_the_class_by_name() -> None:
    assert isinstance(ADAPTER.validate_python({"name": "encoder"}), EncoderModelConfig)
    lst = ADAPTER.validate_python({"name": "lst", "transform_type": "hadamard"})
    assert isinstance(lst, LSTModelConfig) and lst.transform_type == "hadamard"
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        ADAPTER.validate_python({"name": "mamba"})


def test_unknown_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="hidden_size"):
        ADAPTER.validate_python({"name": "encoder", "hidden_size": 64})
    with pytest.raises(ValidationError, match="positional_encoding"):
        LSTModelConfig(positional_encoding="learned")  # the LST key is positional_encoding_type


@pytest.mark.parametrize(
    "field, value",
    [
        ("pooling", "max"),
        ("positional_encoding", "absolute"),
        ("retrieval_interaction", "dot"),
        ("retrieval_encoding", "cross"),
        ("dropout", 1.0),
        ("hidden_dim", 0),
        ("num_layers", 0),
    ],
)
def test_bad_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        EncoderModelConfig(**{field: value})


def test_defaults_and_resolved_widths() -> None:
    cfg = EncoderModelConfig(hidden_dim=64)
    assert cfg.resolved_ffn_hidden_dim == 256
    assert EncoderModelConfig(ffn_hidden_dim=100).resolved_ffn_hidden_dim == 100
    assert (cfg.pooling, cfg.positional_encoding, cfg.retrieval_encoding) == (
        "cls",
        "sinusoidal",
        "independent",
    )
    lst = LSTModelConfig()
    assert (
        lst.hidden_dim,
        lst.num_layers,
        lst.max_sequence_length,
        lst.transform_type,
        lst.num_heads,
        lst.dropout,
    ) == (512, 6, 1024, "dct", 8, 0.0)


def test_lst_heads_must_divide_width() -> None:
    with pytest.raises(ValidationError, match="divisible by num_heads"):
        LSTModelConfig(hidden_dim=30, num_heads=4)


def test_round_trip_through_dump() -> None:
    cfg = EncoderModelConfig(hidden_dim=32, pooling="last", gradient_checkpointing=True)
    assert ADAPTER.validate_python(cfg.model_dump()) == cfg
