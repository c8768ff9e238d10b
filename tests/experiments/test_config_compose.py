"""experiments.config.compose: conf/ composed and validated outside a Hydra app."""

from __future__ import annotations

import pytest

from experiments.config import ConfigError
from experiments.config.compose import compose_experiment


def test_a_preset_composes_to_its_values() -> None:
    exp = compose_experiment(["experiment=lra/softmax-pathfinder", "seed=3"])
    assert (exp.model.hidden_dim, exp.model.num_layers, exp.data.batch_size) == (32, 4, 512)
    assert exp.seed == 3 and exp.task.name == "pathfinder"


def test_an_invalid_value_is_one_sentence() -> None:
    with pytest.raises(ConfigError, match="init_weights"):
        compose_experiment(["model.init_weights=glorot"])
