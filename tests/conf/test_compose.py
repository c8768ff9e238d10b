"""Every config group option and preset composes and validates; generated files are current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.config import ExperimentConfig, validate_experiment
from experiments.data.registry import names as task_names
from spectrans import registry

CONF = Path(__file__).resolve().parents[2] / "conf"
TASKS = list(task_names())
PLUGIN_OF = {
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
    "ray": "hydra_plugins.hydra_ray_launcher",
}


def _compose(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=True)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_attention_options_are_the_registry() -> None:
    assert sorted(registry.names()) == _options("attention")


@pytest.mark.parametrize("script", ["make_attention_confs.py", "make_presets.py"])
def test_generated_files_are_up_to_date(script: str) -> None:
    path = CONF.parent / "scripts" / script
    out = subprocess.run([sys.executable, str(path), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


GROUPS = [
    "task",
    "attention",
    "model",
    "optimizer",
    "scheduler",
    "trainer",
    "callbacks",
    "logger",
    "paths",
    "data",
]


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in _options(g)])
def test_every_group_option_composes_and_validates(group: str, option: str) -> None:
    raw = _compose([f"{group}={option}"])
    exp = validate_experiment(raw)
    assert isinstance(exp, ExperimentConfig)
    if group in ("task", "attention"):
        assert raw[group]["name"] == option.removesuffix("_small")


@pytest.mark.parametrize("option", _options("launcher"))
def test_launchers_compose_when_their_plugin_is_installed(option: str) -> None:
    plugin = PLUGIN_OF.get(option)
    if plugin is not None and importlib.util.find_spec(plugin.split(".")[0]) is None:
        pytest.skip(f"{plugin} is an optional extra")
    if plugin is not None:
        try:
            importlib.import_module(plugin)
        except ImportError:
            pytest.skip(f"{plugin} is an optional extra")
    validate_experiment(_compose([f"launcher={option}"]))


PRESETS = sorted(
    p.relative_to(CONF / "experiment").with_suffix("").as_posix()
    for p in (CONF / "experiment").rglob("*.yaml")
)


def test_presets_cover_every_variant_and_task() -> None:
    variants = [
        "softmax",
        "performer",
        "spectral",
        "lst-dct",
        "lst-dst",
        "lst-hadamard",
        "mixed",
        "fnet",
    ]
    assert {f"lra/{v}-{t}" for v in variants for t in TASKS} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_validates(preset: str) -> None:
    exp = validate_experiment(_compose([f"experiment={preset}"]))
    variant, task = preset.removeprefix("lra/").rsplit("-", 1)
    assert (exp.variant, exp.task.name) == (variant, task)
    assert exp.optimizer.betas == (0.9, 0.98) and exp.optimizer.eps == 1e-9


def test_lra_listops_preset_has_the_lra_numbers() -> None:
    exp = validate_experiment(_compose(["experiment=lra/softmax-listops"]))
    assert (exp.model.num_layers, exp.model.hidden_dim, exp.model.ffn_hidden_dim) == (4, 512, 1024)
    assert (exp.attention.num_heads, exp.attention.resolved_head_dim) == (8, 64)
    assert (exp.data.batch_size, exp.optimizer.lr, exp.optimizer.weight_decay) == (32, 0.05, 0.1)
    assert (exp.scheduler.name, exp.scheduler.warmup_steps, exp.trainer.max_steps) == (
        "rsqrt",
        1000,
        5000,
    )
    pf = validate_experiment(_compose(["experiment=lra/fnet-pathfinder"]))
    assert (pf.model.pooling, pf.scheduler.name, pf.data.batch_size) == ("mean", "cosine", 512)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("attention", registry.names())
def test_every_attention_task_pair_validates_with_debug(attention: str, task: str) -> None:
    exp = validate_experiment(_compose([f"attention={attention}", f"task={task}", "debug=default"]))
    assert (exp.attention.name, exp.task.name, exp.trainer.accelerator) == (attention, task, "cpu")
    assert exp.model.max_sequence_length >= exp.task.max_length


def test_lst_transform_from_attention_group_and_model_lst() -> None:
    exp = validate_experiment(_compose(["attention=lst", "attention.transform_type=dst"]))
    assert (exp.variant, exp.name) == ("lst-dst", "listops-lst-dst")
    exp = validate_experiment(_compose(["model=lst", "attention.transform_type=hadamard"]))
    assert (exp.model.name, exp.model.transform_type, exp.variant) == (
        "lst",
        "hadamard",
        "lst-hadamard",
    )


def test_default_config_is_the_small_cpu_listops_run() -> None:
    exp = validate_experiment(_compose([]))
    assert (exp.task.name, exp.attention.name, exp.model.name) == ("listops", "softmax", "encoder")
    assert exp.task.generate is not None and exp.task.generate.size == "small"
    assert exp.model.num_layers == 2 and exp.model.hidden_dim == 64
    assert exp.task.generate.max_depth == 3 and exp.task.max_length == 100
    assert exp.trainer.max_steps == 1500 and exp.data.batch_size == 32


def test_hparams_search_composes_the_optuna_sweep() -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=["hparams_search=lst_optuna"], return_hydra_config=True
        )
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.startswith("hydra_plugins.hydra_optuna_sweeper")
    assert sweeper.direction == "maximize" and sweeper.sampler.seed == cfg.seed
    assert set(sweeper.params) == {"attention.transform_type", "optimizer.lr", "model.dropout"}
    exp = validate_experiment(_compose(["hparams_search=lst_optuna"]))
    assert exp.attention.name == "lst"


def test_two_runs_in_the_same_second_get_different_directories() -> None:
    def run_dir() -> str:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=["hydra.run.dir=x_${now:%Y-%m-%d_%H-%M-%S}_${run_id:}"],
                return_hydra_config=True,
            )
        return str(cfg.hydra.run.dir)

    first, second = run_dir(), run_dir()
    assert first != second
    assert all(len(d.rsplit("_", 1)[1]) == 6 for d in (first, second))  # the random id
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", return_hydra_config=True)
    assert "${run_id:}" in OmegaConf.to_container(cfg.hydra.run)["dir"]
