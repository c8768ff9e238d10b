"""Check command-line overrides before Hydra runs, so mistakes end in one sentence.

Hydra itself rejects a wrong group option (``attention=perfomer``) or an unknown key
(``attention.foo=1``) with a multi-line message and exit code 1. :func:`precheck_overrides`
composes the config with the same overrides, validates it
(:func:`experiments.config.validate_experiment`) and turns any failure into one sentence
naming the key, the value and the allowed choices; :func:`precheck_or_exit` prints it and
exits with code 2, before Hydra creates a run folder. With ``-m`` every value of the sweep
grid is checked. Other flags (``--cfg``, ``--help``, ...) are left to Hydra. The output
folder must be writable too: Hydra creates the run folder in it before the job starts, and
would report a read-only one with a traceback.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
from pathlib import Path

from experiments.config.compose import CONF_DIR


def _parent_keys(overrides: list[str], key: str, conf_dir: Path) -> list[str]:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    others = [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith(key)]
    parent = key.rpartition(".")[0]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=others)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        return sorted(str(k) for k in node.keys()) if node is not None else []
    except Exception:  # noqa: BLE001 - the list is only a hint
        return []


MULTIRUN_FLAGS = ("-m", "--multirun")


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """One override list per value of every sweep (``key=a,b``).

    The other sweeps stay at their first value, so every value of a ``-m`` grid is checked
    without composing the whole grid.

    Raises:
        ValueError: an override Hydra cannot parse (one sentence).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as err:
        raise ValueError(
            f"cannot parse the overrides {' '.join(overrides)!r} ({' '.join(str(err).split())}); "
            "quote a value with spaces or special characters, e.g. key='a b'"
        ) from None
    fixed, sweeps = [], []
    for override in parsed:
        text = override.input_line or ""
        if override.is_sweep_override():
            prefix = text.split("=", 1)[0]
            values = [f"{prefix}={v}" for v in override.sweep_string_iterator()]
            sweeps.append(values)
        else:
            fixed.append(text)
    if not sweeps:
        return [fixed]
    jobs = []
    for i, values in enumerate(sweeps):
        others = [v[0] for j, v in enumerate(sweeps) if j != i]
        jobs += [[*fixed, *others, value] for value in values]
    return jobs


def precheck_overrides(overrides: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """One sentence describing what is wrong with ``overrides``, or None.

    The config is composed and validated (each value of a ``-m`` sweep).
    """
    multirun = any(o in MULTIRUN_FLAGS for o in overrides)
    overrides = [o for o in overrides if o not in MULTIRUN_FLAGS]
    if any(o.startswith("-") for o in overrides):
        return None
    own_dirs = ("hydra.run.dir", "hydra.sweep.dir")  # run folders outside paths.output_dir
    check_output = not any(o.lstrip("+~").startswith(own_dirs) for o in overrides)
    overrides = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    try:
        jobs = sweep_jobs(overrides) if multirun else [overrides]
        if not multirun:
            sweep_jobs(overrides)  # parse errors (an unquoted space) in one sentence
    except ValueError as err:
        return str(err)
    for job in jobs:
        problem = _precheck_one(job, conf_dir, check_output)
        if problem is not None:
            return problem
    return None


def _precheck_one(overrides: list[str], conf_dir: Path, check_output: bool = True) -> str | None:
    """Compose and validate one job's overrides (and, by default, that the output is writable)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from experiments.config import ConfigError, validate_experiment

    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        validate_experiment(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
        if check_output:
            return unwritable_folder(str(cfg.paths.output_dir), "paths.output_dir")
    except MissingConfigException as err:
        group, _, value = (err.missing_cfg_file or "").rpartition("/")
        options = ", ".join(sorted(err.options or []))
        if group and options:
            return f"{group.replace('/', '.')} = {value!r} is invalid; choose one of: {options}"
        return str(err).splitlines()[0]
    except ConfigCompositionException as err:
        message = str(err)
        match = re.search(r"Could not override '([^']+)'", message)
        if match:
            key = match.group(1)
            allowed = _parent_keys(overrides, key, conf_dir)
            if allowed and key.rpartition(".")[2] not in allowed:
                value = next(
                    (
                        o.split("=", 1)[1]
                        for o in overrides
                        if o.split("=", 1)[0] == key and "=" in o
                    ),
                    "",
                )
                return (
                    f"{key} = {value!r} is an unknown key; allowed keys: "
                    f"{', '.join(allowed)} (write +{key}={value} to add a key on purpose)"
                )
        return " ".join(message.split())
    except ConfigError as err:
        return str(err)
    except OmegaConfBaseException as err:
        return f"the config cannot be resolved: {str(err).splitlines()[0]}"
    except Exception:  # noqa: BLE001 - anything else is Hydra's to report
        return None
    return None


def unwritable_folder(path: str, key: str) -> str | None:
    """One sentence when ``path`` cannot be created or written in, else None.

    A folder is made and removed in the nearest existing folder on the way to ``path``
    (``path`` itself when it exists), so nothing is left behind.
    """
    target = Path(path).absolute()
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as err:
        return (
            f"cannot use {target} ({key}): {existing} is not writable ({err.strerror or err}); "
            f"make it writable or point {key} elsewhere"
        )
    return None


def precheck_or_exit(overrides: list[str]) -> None:
    """Print the problem found by :func:`precheck_overrides` and exit 2, else return."""
    problem = precheck_overrides(overrides)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)


def answer_ctrl_c() -> None:
    """Make SIGINT raise ``KeyboardInterrupt`` even if this process was started ignoring it.

    A command started in the background of a non-interactive shell (``cmd &`` in a script)
    inherits SIGINT ignored, and Python then leaves it ignored. The Ctrl-C with which a
    campaign stops a run at its deadline (``last.ckpt`` saved, record ``interrupted``) would
    then do nothing, and the run would be terminated later without saving.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
