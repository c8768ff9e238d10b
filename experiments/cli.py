"""Check command-line overrides before Hydra runs, so mistakes end in one sentence.

Hydra itself rejects a wrong group option (``attention=perfomer``) or an unknown key
(``attention.foo=1``) with a multi-line message and exit code 1. :func:`precheck_overrides`
composes the config once with the same overrides and turns those failures into one sentence
naming the key, the value and the allowed choices; :func:`precheck_or_exit` prints it and exits
with code 2. Flags (``-m``, ``--cfg``, ...) are left to Hydra.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


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


def precheck_overrides(overrides: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """Compose with ``overrides``; return one sentence describing the problem, or None."""
    if any(o.startswith("-") for o in overrides):
        return None
    overrides = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException, MissingConfigException

    import experiments.config  # noqa: F401 - registers the resolvers

    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            compose("config", overrides=overrides)
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
    except Exception:  # noqa: BLE001 - anything else is Hydra's to report
        return None
    return None


def precheck_or_exit(overrides: list[str]) -> None:
    """Print the problem found by :func:`precheck_overrides` and exit 2, else return."""
    problem = precheck_overrides(overrides)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
