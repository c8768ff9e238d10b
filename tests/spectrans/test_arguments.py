"""pick_args: a constructor's own arguments passed on by name."""

import pytest

from spectrans.arguments import pick_args


def test_pick_args_takes_exactly_the_named_entries() -> None:
    values = {"self": object(), "hidden_dim": 32, "dropout": 0.1, "other": "x"}
    assert pick_args(values, ("hidden_dim", "dropout")) == {"hidden_dim": 32, "dropout": 0.1}


def test_pick_args_refuses_a_missing_name() -> None:
    with pytest.raises(KeyError, match="num_heads"):
        pick_args({"hidden_dim": 32}, ("hidden_dim", "num_heads"))
