"""The library stays free of the harness's frameworks; unknown mixer names fail clearly."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from spectrans import registry

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


def test_unknown_name_gives_one_sentence_with_choices() -> None:
    try:
        registry.get_entry("flash")
    except KeyError as err:
        message = str(err)
        assert "flash" in message and "performer" in message
    else:
        raise AssertionError("unknown name accepted")
