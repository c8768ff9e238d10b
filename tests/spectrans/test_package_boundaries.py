"""The library stays free of the harness's frameworks, and its three name lists agree."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

from spectrans import registry
from spectrans.config import layers as layer_configs

PACKAGE = Path(__file__).resolve().parents[2] / "spectrans"
FORBIDDEN = ("lightning", "pytorch_lightning", "hydra", "omegaconf")


def test_spectrans_sources_never_import_lightning_or_hydra() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            else:
                continue
            offenders += [f"{path}: {m}" for m in mods if m.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_every_registered_layer_loads_no_framework() -> None:
    code = (
        "import sys\n"
        "from spectrans import registry\n"
        "for n in registry.names(): registry.get_entry(n).layer_class()\n"
        "import spectrans.models\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)


def test_registry_names_equal_config_name_literals() -> None:
    union_members = typing.get_args(typing.get_args(layer_configs.TokenMixerConfigUnion)[0])
    literals = {typing.get_args(cls.model_fields["name"].annotation)[0] for cls in union_members}
    assert literals == set(registry.names())
    for name in registry.names():
        entry = registry.get_entry(name)
        assert typing.get_args(entry.config_class.model_fields["name"].annotation) == (name,)


def test_unknown_name_gives_one_sentence_with_choices() -> None:
    try:
        registry.get_entry("flash")
    except KeyError as err:
        message = str(err)
        assert "flash" in message and "performer" in message
    else:
        raise AssertionError("unknown name accepted")
