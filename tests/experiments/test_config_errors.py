"""A bad config ends in one sentence naming the key, the value and the choices; exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.cli import precheck_overrides
from experiments.config import ConfigError, validate_experiment

ROOT = Path(__file__).resolve().parents[2]


def _raw(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def _error(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        validate_experiment(_raw(overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_hidden_dim_not_divisible_by_heads() -> None:
    message = _error(["model.hidden_dim=66", "attention.num_heads=4"])
    assert "hidden_dim (66)" in message and "num_heads (4)" in message


def test_unknown_key_lists_the_allowed_keys() -> None:
    message = _error(["+attention.foo=1"])
    assert message.startswith("attention.foo = 1 is an unknown key")
    assert "num_heads" in message and "alibi" in message


def test_unknown_key_in_task_and_harness_nodes() -> None:
    assert _error(["+task.colour=red"]).startswith("task.colour = 'red' is an unknown key")
    assert "max_steps" in _error(["+trainer.max_stepz=3"])


@pytest.mark.parametrize(
    ("override", "key", "choice"),
    [
        ("trainer.precision=8", "trainer.precision", "bf16-mixed"),
        ("optimizer.name=sgd", "optimizer.name", "adamw"),
        ("model.pooling=max", "model.pooling", "mean"),
        ("attention.transform_type=dft", "attention.transform_type", "hadamard"),
    ],
)
def test_bad_choice_names_key_value_and_choices(override: str, key: str, choice: str) -> None:
    value = override.split("=")[1]
    message = _error(["attention=lst", override])
    assert message.startswith(f"{key} = ") and value in message and choice in message


def test_bad_attention_name_in_a_dict() -> None:
    raw = _raw([])
    raw["attention"]["name"] = "perfomer"
    with pytest.raises(ConfigError, match="attention.name = 'perfomer' is invalid; choose one"):
        validate_experiment(raw)


def test_cross_field_checks() -> None:
    assert "model=lst" in _error(["model=lst", "attention=softmax"])
    assert "trainer.max_steps = -1" in _error(["scheduler=cosine", "trainer.max_steps=-1"])
    assert "bf16-mixed" in _error(["trainer=cpu", "trainer.precision=16-mixed"])


def test_precheck_turns_hydra_errors_into_one_sentence() -> None:
    message = precheck_overrides(["attention=perfomer"])
    assert message is not None and message.startswith("attention = 'perfomer' is invalid")
    assert "performer" in message and "softmax" in message
    message = precheck_overrides(["task=listops", "attention.foo=1"])
    assert message is not None and message.startswith("attention.foo = '1' is an unknown key")
    assert precheck_overrides(["attention=lst", "attention.transform_type=dst"]) is None
    swept = precheck_overrides(["-m", "attention=softmax,perfomer"])  # every grid value
    assert swept is not None and swept.startswith("attention = 'perfomer' is invalid")
    assert precheck_overrides(["--cfg", "job"]) is None  # other flags are Hydra's


@pytest.mark.parametrize("override", ["attention=perfomer", "model.hidden_dim=66"])
def test_command_line_exit_code_2_and_one_sentence(override: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), override, f"paths.output_dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr


def test_step_based_validation_reaches_the_trainer() -> None:
    exp = validate_experiment(_raw(["trainer.check_val_every_n_epoch=null"]))
    kwargs = exp.trainer.trainer_kwargs()
    assert "check_val_every_n_epoch" in kwargs and kwargs["check_val_every_n_epoch"] is None
    assert "max_time" not in kwargs  # other None options mean Lightning's default
    every_epoch = validate_experiment(_raw(["trainer.check_val_every_n_epoch=1"]))
    assert every_epoch.trainer.trainer_kwargs()["check_val_every_n_epoch"] == 1


def test_bad_mask_mode_is_one_sentence() -> None:
    message = _error(["task.mask=nonzero"])
    assert "task.mask" in message and "lra_nonzero" in message


def test_errors_inside_a_union_name_the_key_the_user_wrote() -> None:
    assert _error(["+task.generate.colour=red"]).startswith(
        "task.generate.colour = 'red' is an unknown key; allowed keys: size, sizes"
    )
    assert _error(["model.pooling=max"]).startswith("model.pooling = 'max' is invalid")
    raw = _raw([])
    raw["task"]["name"] = "lisptops"
    with pytest.raises(ConfigError, match=r"^task.name = 'lisptops' is invalid; choose one of: "):
        validate_experiment(raw)
    del raw["task"]["name"]
    with pytest.raises(ConfigError, match=r"^task.name is missing"):
        validate_experiment(raw)


@pytest.mark.parametrize("duration", ["00:00:00:420", "7:00", "00:00:7:00", "seven minutes"])
def test_max_time_in_the_wrong_format_fails_before_the_run(duration: str) -> None:
    message = _error([f"trainer.max_time={duration}"])
    assert message.startswith("trainer.max_time") and "DD:HH:MM:SS" in message


def test_max_time_of_zero_is_refused_and_a_valid_one_accepted() -> None:
    assert "zero" in _error(["trainer.max_time=00:00:00:00"])
    config = validate_experiment(_raw(["trainer.max_time=00:00:07:30"]))
    assert config.trainer.max_time == "00:00:07:30"


def test_image_positions_need_a_square_sequence() -> None:
    message = _error(["task=listops", "model.positional_encoding=sinusoidal2d"])
    assert "sinusoidal2d" in message and "2000 tokens" in message
    validate_experiment(_raw(["task=pathfinder", "model.positional_encoding=sinusoidal2d"]))
