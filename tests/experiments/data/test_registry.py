"""The task registry: one declaration per task, everything else derived from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from experiments.data import datamodule_class, parse_task_config, registry
from experiments.data.config import ListOpsTaskConfig, TaskConfigBase

CONF_TASK = Path(__file__).resolve().parents[3] / "conf" / "task"


def test_the_six_lra_tasks_are_registered_in_lra_order() -> None:
    assert registry.names() == ("listops", "text", "retrieval", "image", "pathfinder", "pathx")


@pytest.mark.parametrize("name", registry.names())
def test_every_task_has_its_conf_file_config_and_datamodule(name: str) -> None:
    entry = registry.get_entry(name)
    assert (CONF_TASK / f"{name}.yaml").is_file()
    assert entry.config_class.model_fields["name"].default == name
    assert datamodule_class(name) is entry.cls
    assert parse_task_config({"name": name}).name == name


def test_unknown_task_lists_the_registered_names() -> None:
    with pytest.raises(KeyError, match="use one of listops, text, retrieval, image, pathfinder"):
        datamodule_class("nope")
    with pytest.raises(ValidationError, match="'listops', 'text', 'retrieval'"):
        parse_task_config({"name": "nope"})


def test_register_task_rejects_a_config_of_another_name() -> None:
    with pytest.raises(ValueError, match="it must be 'other'"):
        registry.register_task("other", ListOpsTaskConfig)


def test_register_task_rejects_a_taken_name() -> None:
    class Impostor:
        pass

    with pytest.raises(ValueError, match="'listops' is already taken by experiments.data.listops"):
        registry.register_task("listops", ListOpsTaskConfig)(Impostor)
    assert registry.get_entry("listops").cls.__name__ == "ListOpsDataModule"
    assert all(issubclass(c, TaskConfigBase) for c in registry.config_classes())


def test_a_task_declared_in_one_module_is_parsed_and_built(monkeypatch, tmp_path) -> None:
    from typing import Literal

    from experiments.data import build_datamodule
    from experiments.data.listops import ListOpsDataModule

    monkeypatch.setattr(registry, "_TABLE", dict(registry._load()))

    class ToyTaskConfig(TaskConfigBase):
        name: Literal["toy"] = "toy"
        path: str = "toy"
        max_length: int = 8

    @registry.register_task("toy", ToyTaskConfig)
    class ToyDataModule(ListOpsDataModule):
        pass

    assert registry.names()[-1] == "toy"
    cfg = parse_task_config({"name": "toy", "max_length": 16})
    assert isinstance(cfg, ToyTaskConfig) and cfg.max_length == 16
    dm = build_datamodule({"name": "toy"}, data_dir=tmp_path, batch_size=2)
    assert type(dm) is ToyDataModule and dm.max_length == 8
