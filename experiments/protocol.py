"""What kind of run a config describes: ``lra``, ``custom`` or ``debug``.

- ``debug``: the debug preset, or data or evaluation too small to mean anything (tiny
  generated data, ``limit_*_batches``, a handful of steps).
- ``lra``: an ``experiment=lra/<variant>-<task>`` preset with every value that defines the
  data, model, optimisation and evaluation unchanged (only :data:`FREE_KEYS`, which say where
  and how the run executes, may differ; the batch counts as the effective batch).
- ``custom``: anything else.

Only ``lra`` runs enter the LRA tables by default. A record written before this field
existed is classified from the config it stores, the same way. A record that says ``lra`` is
checked against its preset as the preset is now (:func:`current_protocol`): when a preset
changes what it trains, its earlier runs stop counting as its protocol runs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

Protocol = Literal["lra", "custom", "debug"]
PROTOCOLS: tuple[str, ...] = ("lra", "custom", "debug")
PRESET_DIR = Path(__file__).resolve().parents[1] / "conf" / "experiment" / "lra"
DEBUG_MAX_STEPS = 20
"""A run of at most this many steps is a smoke test."""
TINY_TRAIN_SIZE = 1000
"""Generated training sets below this many examples are tiny."""


def _get(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(part)
    return tree


EXECUTION_KEYS = (
    "compile",
    "compile_mode",
    "model.recompute_mixing",
    "model.gradient_checkpointing",
    "task.generate.workers",
    "data.num_workers",
    "data.pin_memory",
    "data.persistent_workers",
    "data.prefetch_factor",
    "trainer.max_time",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.profiler",
    "trainer.log_every_n_steps",
)
"""Keys that change how fast a run goes or what it prints, never which steps it takes: they may
also differ between the segments of one resumed run (:mod:`experiments.resume`).
``model.recompute_mixing`` chooses how the mixers' backward gets its intermediates (kept, or
rebuilt from q, k and v) and ``model.gradient_checkpointing`` whether each block is run again in
the backward (its random state replayed, so the same dropout): the same gradients up to
rounding, as with ``compile``."""

FREE_KEYS = (
    *EXECUTION_KEYS,
    "name",
    "seed",
    "resume",
    "paths",
    "logger",
    "callbacks",
    "hydra",
    "launcher",
    "hparams_search",
    "debug",
    "task.cache",
    "data.batch_size",
    "trainer.accumulate_grad_batches",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.strategy",
    "trainer.precision",
    "trainer.deterministic",
    "trainer.benchmark",
)
"""Keys that say where and how a run executes, not what it trains and evaluates.

``task.pad_to`` is not one of them: FNet, the global filter and the LST layers filter over
the padded length, so the outputs at real tokens change with it (LRA pads every batch to the
task's maximum length, as the presets do); softmax and S4D give the same outputs either way."""


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(
            _flatten(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}")
        )
    return flat


def _is_free(key: str) -> bool:
    return any(key == free or key.startswith(free + ".") for free in FREE_KEYS)


def data_parallel_replicas(config: dict[str, Any]) -> int | None:
    """How many processes each train on their own batch per step: devices times nodes.

    ``trainer.devices`` as Lightning reads it: a count (``2``, ``"2"``), a list of device ids
    (``[0, 1]``, ``"0,1"``); ``auto`` and ``-1`` depend on the machine, so None. A config
    without the key (an older record) ran on one device.
    """
    devices = _get(config, "trainer.devices")
    nodes = _get(config, "trainer.num_nodes") or 1
    count: int | None
    if devices is None:
        count = 1
    elif isinstance(devices, bool):
        count = None
    elif isinstance(devices, int):
        count = devices if devices > 0 else None
    elif isinstance(devices, list | tuple):
        count = len(devices) or None
    elif isinstance(devices, str) and "," in devices:
        count = len([part for part in devices.split(",") if part.strip()]) or None
    elif isinstance(devices, str) and devices.strip().isdigit():
        count = int(devices) or None
    else:
        count = None
    return count * nodes if count is not None and isinstance(nodes, int) else None


def effective_batch(config: dict[str, Any]) -> int | str | None:
    """Examples per optimiser step: batch per device x accumulation x data-parallel devices.

    ``data.batch_size`` times ``trainer.accumulate_grad_batches`` times
    :func:`data_parallel_replicas`. A text when the device count is not in the config (it
    then matches no preset's number).
    """
    batch = _get(config, "data.batch_size")
    accumulate = _get(config, "trainer.accumulate_grad_batches") or 1
    if not isinstance(batch, int):
        return batch
    replicas = data_parallel_replicas(config)
    if replicas is None:
        devices = _get(config, "trainer.devices")
        return f"{batch * accumulate} per device on trainer.devices={devices}"
    return batch * accumulate * replicas


def protocol_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The values that decide whether a run follows its preset's protocol.

    Everything that defines the data, the model, the optimisation and the evaluation; the
    batch as the effective batch (:func:`effective_batch`: per-device batch, accumulation and
    data-parallel devices together).
    """
    flat = {key.rstrip("."): value for key, value in _flatten(config).items() if not _is_free(key)}
    flat["effective batch"] = effective_batch(config)
    return flat


def debug_reason(config: dict[str, Any], debug_choice: str | None = None) -> str | None:
    """Why ``config`` is a smoke test, or None."""
    if debug_choice:
        return f"debug={debug_choice} preset"
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        value = _get(config, f"trainer.{key}")
        if value is not None and value != 1.0:
            return f"trainer.{key}={value} evaluates or trains on part of the data"
    steps = _get(config, "trainer.max_steps")
    if isinstance(steps, int) and 0 < steps <= DEBUG_MAX_STEPS:
        return f"trainer.max_steps={steps} is a smoke test"
    generate = _get(config, "task.generate")
    if isinstance(generate, dict):
        sizes = generate.get("sizes")
        if generate.get("size") == "tiny" and not sizes:
            return "task.generate.size=tiny"
        if sizes and sizes[0] < TINY_TRAIN_SIZE:
            return f"task.generate.sizes={list(sizes)} is tiny"
        count = generate.get("num_images")
        if count is not None and count < TINY_TRAIN_SIZE:
            return f"task.generate.num_images={count} is tiny"
    return None


def preset_name(config: dict[str, Any], experiment_choice: str | None = None) -> str | None:
    """``lra/<variant>-<task>`` when the run came from an LRA preset, else None.

    At training time Hydra's choice of ``experiment`` says it; for a stored record the
    preset's run name ``lra-<task>-<variant>`` does.
    """
    if experiment_choice is not None:
        return experiment_choice if experiment_choice.startswith("lra/") else None
    name, task = str(config.get("name") or ""), _get(config, "task.name")
    if not name.startswith(f"lra-{task}-"):
        return None
    return f"lra/{name.removeprefix(f'lra-{task}-')}-{task}"


@functools.cache
def preset_config(preset: str) -> dict[str, Any] | None:
    """The resolved config of ``experiment=<preset>`` with no other override (None: no such)."""
    if not (PRESET_DIR.parent / f"{preset}.yaml").is_file():
        return None
    return _compose([f"experiment={preset}"])


@functools.cache
def preset_base_config(preset: str) -> dict[str, Any] | None:
    """The config the preset's group choices give without the preset's own values.

    ``conf/experiment/<preset>.yaml`` picks config groups (``override /task: pathfinder``) and
    then sets values; this is the composition of those group choices alone: what a key the
    preset sets is worth where the preset does not set it (None: no such preset).
    """
    path = PRESET_DIR.parent / f"{preset}.yaml"
    if not path.is_file():
        return None
    import yaml

    defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
    overrides = [
        f"{group.removeprefix('override ').lstrip('/')}={choice}"
        for entry in defaults
        if isinstance(entry, dict)
        for group, choice in entry.items()
    ]
    return _compose(overrides)


def _compose(overrides: list[str]) -> dict[str, Any]:
    """The resolved ``conf/config.yaml`` under ``overrides``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup
    from omegaconf import OmegaConf

    from experiments.config import register_resolvers

    register_resolvers()
    # Inside a running Hydra app (train.py) the global Hydra is taken: set it aside and put it
    # back after this separate composition.
    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(PRESET_DIR.parents[1]), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
    finally:
        restore_gh_from_backup(backup)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def classify(
    config: dict[str, Any] | None,
    *,
    experiment_choice: str | None = None,
    debug_choice: str | None = None,
) -> tuple[Protocol, str]:
    """``(protocol, why)`` of a resolved config.

    Args:
        config: The resolved config (a record's ``config``); None is ``custom``.
        experiment_choice: Hydra's ``experiment`` choice, when known.
        debug_choice: Hydra's ``debug`` choice, when known.
    """
    if not isinstance(config, dict):
        return "custom", "no config recorded"
    reason = debug_reason(config, debug_choice)
    if reason is not None:
        return "debug", reason
    preset = preset_name(config, experiment_choice)
    reference = preset_config(preset) if preset is not None else None
    if reference is None:
        return "custom", "not an experiment=lra/* preset"
    changed = _changed(config, reference, preset)
    if changed:
        return "custom", f"experiment={preset} with {changed} changed"
    return "lra", f"experiment={preset}"


def _changed(config: dict[str, Any], reference: dict[str, Any], preset: str) -> str:
    """The protocol values of ``config`` that differ from ``reference``'s, or ``""``.

    A key ``config`` does not have did not exist when its run was made, so the behaviour that
    key's default now names held: it is compared as the value :func:`preset_base_config` (the
    preset's group choices without its own values) gives it, composed only when such a key
    exists. A key missing from both is skipped.
    """
    ours, theirs = protocol_fields(config), protocol_fields(reference)
    missing = theirs.keys() - ours.keys()
    base = preset_base_config(preset) if missing else None
    defaults = protocol_fields(base) if base is not None else {}
    for key in missing & defaults.keys():
        ours[key] = defaults[key]
    changed = [key for key in ours if key in theirs and ours[key] != theirs[key]]
    return ", ".join(f"{key} {ours[key]!r} (preset: {theirs[key]!r})" for key in changed)


def stale_reason(data: dict[str, Any]) -> str | None:
    """Why a record that says ``lra`` is no longer a run of its preset as it is now, or None.

    Stale: the record's config and its preset's (composed now) differ in a value that
    decides the protocol. None for records of another protocol, without a config, or whose
    preset no longer exists: only a preset's own runs go stale when the preset changes.
    """
    config = data.get("config")
    if data.get("protocol") != "lra" or not isinstance(config, dict):
        return None
    preset = preset_name(config)
    reference = preset_config(preset) if preset is not None else None
    if reference is None:
        return None
    changed = _changed(config, reference, preset)
    return f"made under an earlier revision of experiment={preset}: {changed}" if changed else None


def current_protocol(data: dict[str, Any]) -> tuple[Protocol, str]:
    """``(protocol, why)`` of a stored record under the presets as they are now.

    A record's own ``protocol`` says what its run was when it ran; an ``lra`` run that is
    :func:`stale_reason` is ``custom`` now. A record without the field is classified from its
    config.
    """
    recorded = data.get("protocol")
    if recorded not in PROTOCOLS:
        return classify(data.get("config"))
    stale = stale_reason(data)
    return ("custom", f"recorded lra, {stale}") if stale else (recorded, "recorded")
