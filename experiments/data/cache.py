"""On-disk cache of tokenised splits, keyed by the config and the source files that made them.

A cache entry is a folder ``<root>/<task>-<key>/`` holding one ``.npy`` per array
(``<split>.<array>.npy``) and ``meta.json``. The key is the first 16 hex digits of
``sha256(json(config, [(path, mtime_ns, size) for each source file], CACHE_VERSION))``: a
changed config value or a touched source file gives a new key, hence a rebuild. Entries are
built in a temporary folder and renamed into place, so a half-written entry is never read.
Arrays are loaded memory-mapped (read-only), so large pixel caches cost no RAM up front.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

CACHE_VERSION = 1
SplitArrays = dict[str, dict[str, np.ndarray]]


def file_fingerprints(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, int, int]]:
    """``(path, mtime_ns, size)`` of each file, sorted by path."""
    out = []
    for p in sorted({os.fspath(p) for p in paths}):
        st = os.stat(p)
        out.append((p, st.st_mtime_ns, st.st_size))
    return out


def cache_key(config: dict[str, Any], fingerprints: list[tuple[str, int, int]]) -> str:
    """Hash of the config and the source file fingerprints (16 hex digits)."""
    blob = json.dumps(
        {"config": config, "files": fingerprints, "version": CACHE_VERSION},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _load(folder: Path) -> SplitArrays:
    meta = json.loads((folder / "meta.json").read_text())
    return {
        split: {name: np.load(folder / f"{split}.{name}.npy", mmap_mode="r") for name in names}
        for split, names in meta["arrays"].items()
    }


def load_or_build(
    root: str | os.PathLike[str],
    task: str,
    key: str,
    build: Callable[[], SplitArrays],
    *,
    enabled: bool = True,
) -> tuple[SplitArrays, bool]:
    """Return the cached splits for ``key``, building and storing them on a miss.

    Args:
        root: Cache root folder.
        task: Task name (the folder prefix).
        key: :func:`cache_key` of the config and source files.
        build: Makes ``{split: {array_name: array}}`` from the sources.
        enabled: When False, always build and store nothing.

    Returns:
        ``(splits, hit)``: the arrays (memory-mapped on a hit or after storing) and whether
        the cache already held them.
    """
    if not enabled:
        return build(), False
    folder = Path(root) / f"{task}-{key}"
    if (folder / "meta.json").is_file():
        return _load(folder), True
    arrays = build()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{task}-{key}-", dir=folder.parent))
    try:
        for split, named in arrays.items():
            for name, array in named.items():
                np.save(tmp / f"{split}.{name}.npy", np.ascontiguousarray(array))
        meta = {"task": task, "key": key, "arrays": {s: list(a) for s, a in arrays.items()}}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process stored the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _load(folder), False
