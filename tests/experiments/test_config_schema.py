"""The experiment config holds typed config objects, validated once, that reach the builders."""

from __future__ import annotations

import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments import train as harness
from experiments.config import ExperimentConfig, validate_experiment
from experiments.config.errors import _model_classes
from experiments.data import registry as task_registry
from spectrans import registry
from spectrans.config.core import TokenMixerConfig
from spectrans.config.models import EncoderModelConfig

ROOT = Path(__file__).resolve().parents[2]


def _raw(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def _members(field: str) -> set[type]:
    return set(_model_classes(ExperimentConfig.model_fields[field].annotation))


def test_the_node_fields_are_the_unions_of_the_registered_classes() -> None:
    assert _members("attention") == set(registry.config_classes())
    assert _members("task") == set(task_registry.config_classes())
    assert _members("model") >= {EncoderModelConfig}
    annotation = ExperimentConfig.model_fields["attention"].annotation
    assert type(None) in typing.get_args(annotation)  # model=lst needs no attention


@pytest.mark.parametrize("name", registry.names())
def test_every_mixer_preset_validates_into_its_config_object(name: str) -> None:
    exp = validate_experiment(_raw([f"attention={name}"]))
    assert type(exp.attention) is registry.get_entry(name).config_class
    assert exp.attention.hidden_dim == exp.model.hidden_dim
    assert type(exp.task) is task_registry.get_entry(exp.task.name).config_class


def test_the_validated_object_is_never_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the attention config was validated a second time")

    import spectrans.config.layers as layers

    raw = _raw(["attention=softmax"])
    exp = validate_experiment(raw)
    config_class = type(exp.attention)
    monkeypatch.setattr(layers, "parse_layer_config", refuse)
    monkeypatch.setattr(config_class, "model_validate", classmethod(refuse))
    datamodule = SimpleNamespace(
        vocab_size=20, num_classes=10, max_length=64, is_pair=False, input_type="tokens"
    )
    model = harness.build_model(exp, datamodule)
    configs = model.encoder.mixer_configs()
    assert len(configs) == exp.model.num_layers
    assert all(c is exp.attention for c in configs)  # width already the model's: no copy


def test_a_changed_width_is_checked_by_the_config_class_alone() -> None:
    exp = validate_experiment(_raw(["attention=performer"]))
    datamodule = SimpleNamespace(
        vocab_size=20, num_classes=10, max_length=64, is_pair=False, input_type="tokens"
    )
    model = harness.build_model(exp, datamodule)
    assert all(type(c) is type(exp.attention) for c in model.encoder.mixer_configs())
    wider = exp.model.model_copy(update={"hidden_dim": 3 * exp.attention.num_heads + 1})
    with pytest.raises(ValueError, match="divisible by num_heads"):
        harness.build_model(exp.model_copy(update={"model": wider}), datamodule)


def test_the_harness_hands_the_validated_objects_to_the_builders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import experiments.data as data
    import spectrans.models as models

    seen: dict[str, tuple] = {}
    monkeypatch.setattr(models, "build_classifier", lambda *a, **k: seen.setdefault("model", a))
    monkeypatch.setattr(data, "build_datamodule", lambda *a, **k: seen.setdefault("data", a))
    exp = validate_experiment(_raw([]))
    harness.build_model(
        exp,
        SimpleNamespace(
            **dict.fromkeys(("vocab_size", "num_classes", "max_length", "is_pair", "input_type"))
        ),
    )
    harness.build_datamodule(exp)
    model_cfg, mixer_cfg = seen["model"]
    assert model_cfg is exp.model and mixer_cfg is exp.attention
    assert isinstance(mixer_cfg, TokenMixerConfig)
    assert seen["data"] == (exp.task,)


def test_a_config_object_reaches_the_layer_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    exp = validate_experiment(_raw(["attention=softmax"]))
    received: list[object] = []
    entry = registry.get_entry("softmax")
    original = entry.cls.from_config

    def spy(config: TokenMixerConfig) -> object:
        received.append(config)
        return original(config)

    monkeypatch.setattr(entry.cls, "from_config", spy)
    registry.build_layer(exp.attention)
    assert received == [exp.attention] and received[0] is exp.attention
