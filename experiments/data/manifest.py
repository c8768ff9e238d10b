"""Completion manifest of a generated data folder: written last, it decides "complete".

A generator writes its files, then ``manifest.json`` through a temporary name and one
``os.replace``: a folder without a manifest (or with leftover temporary files) is incomplete.
The manifest records the generator, its version, the seed, the counts, the settings and
``checksum = sha256(for each data file in sorted path order: path, NUL, sha256(bytes))``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from experiments.data.errors import DataCorruptError

MANIFEST = "manifest.json"


def checksum(root: Path, files: Iterable[Path]) -> str:
    """sha256 over ``relative path, NUL, sha256(file bytes)`` of each file, sorted by path."""
    outer = hashlib.sha256()
    for rel in sorted(str(Path(f).relative_to(root)) for f in files):
        outer.update(rel.encode() + b"\0" + hashlib.sha256((root / rel).read_bytes()).digest())
    return outer.hexdigest()


def write_manifest(root: Path, record: dict[str, Any], files: Iterable[Path]) -> dict[str, Any]:
    """Write ``root/manifest.json`` = ``record`` plus the files' checksum, atomically, last."""
    full = {**record, "checksum": checksum(root, files)}
    tmp = root / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(full, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, root / MANIFEST)
    return full


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of ``root``, or None when there is none.

    Raises:
        DataCorruptError: When the manifest is not a JSON object.
    """
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataCorruptError(path, f"the manifest cannot be read ({exc})") from exc
    if not isinstance(data, dict):
        raise DataCorruptError(path, "the manifest is not a JSON object")
    return data


def verify(root: Path, files: Iterable[Path], fix: str) -> dict[str, Any]:
    """Check that the files under ``root`` are exactly those the manifest describes.

    Args:
        root: The data folder.
        files: Its data files now.
        fix: The command that regenerates the folder (named in the error).

    Returns:
        The manifest.

    Raises:
        DataCorruptError: When the manifest is missing or its checksum disagrees.
    """
    manifest = read_manifest(root)
    if manifest is None:
        raise DataCorruptError(root, f"the generated folder has no {MANIFEST}; run {fix}")
    if checksum(root, files) != manifest.get("checksum"):
        raise DataCorruptError(
            root / MANIFEST,
            f"the files differ from those the manifest lists (checksum); delete {root} and run "
            f"{fix}",
        )
    return manifest
