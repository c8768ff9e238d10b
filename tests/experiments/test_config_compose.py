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


@pytest.mark.parametrize("model", ["encoder", "hybrid", "lst"])
def test_recompute_mixing_is_null_by_default_and_takes_a_boolean(model: str) -> None:
    assert compose_experiment([f"model={model}"]).model.recompute_mixing is None
    exp = compose_experiment([f"model={model}", "model.recompute_mixing=true"])
    assert exp.model.recompute_mixing is True
    with pytest.raises(ConfigError, match="recompute_mixing"):
        compose_experiment([f"model={model}", "model.recompute_mixing=sometimes"])
