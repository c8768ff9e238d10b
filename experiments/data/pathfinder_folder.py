"""State of a Pathfinder difficulty folder: absent, official, incomplete, stale or complete.

The generator writes ``generator.json`` first and ``manifest.json`` last (see
:mod:`experiments.data.manifest`); image folders are built as ``imgs/.tmp-<b>`` and renamed.
So a folder with ``generator.json`` or temporary leftovers but no manifest was cut short, a
manifest of another generator version is stale, and metadata without either file is official
LRA data (no manifest to check).
"""

from __future__ import annotations

from pathlib import Path

from experiments.data.manifest import read_manifest

GENERATOR = "spectrans-lra pathfinder"
GENERATOR_VERSION = 2


def leftovers(root: Path) -> list[Path]:
    """Temporary files and folders an interrupted generation leaves behind."""
    return sorted(root.glob("imgs/.tmp-*")) + sorted(root.glob("metadata/.*.tmp"))


def data_files(root: Path) -> list[Path]:
    """The data files: ``metadata/<b>.npy`` and ``imgs/<b>/*.png`` (no hidden names)."""
    meta = [p for p in root.glob("metadata/*.npy") if not p.name.startswith(".")]
    imgs = [p for p in root.glob("imgs/*/*.png") if not p.parent.name.startswith(".")]
    return meta + imgs


def folder_state(root: Path) -> tuple[str, str]:
    """``(state, why)`` with state ``absent | official | incomplete | stale | complete``."""
    manifest = read_manifest(root)
    left = leftovers(root)
    if left:
        return "incomplete", f"temporary {left[0].relative_to(root)} is left from a stopped run"
    if manifest is not None:
        version = manifest.get("version")
        if manifest.get("generator") != GENERATOR or version != GENERATOR_VERSION:
            return "stale", f"it was made by generator version {version}, not {GENERATOR_VERSION}"
        return "complete", ""
    if (root / "generator.json").exists():
        return "incomplete", "it has no manifest.json, so its generation was stopped"
    if any((root / "metadata").glob("*.npy")):
        return "official", ""
    return "absent", ""
