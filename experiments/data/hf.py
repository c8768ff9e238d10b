"""Optional Hugging Face ``datasets`` access (imported lazily; never needed by tests)."""

from __future__ import annotations

import os
from typing import Any

from experiments.data.errors import DataNotFoundError


def load_hf_dataset(hf_id: str, local: os.PathLike[str] | str, expected: str, how: str) -> Any:
    """``datasets.load_dataset(hf_id)``.

    Args:
        hf_id: Hub id, e.g. ``stanfordnlp/imdb``.
        local: The local folder that was looked for first (named in the error).
        expected: What belongs in that folder.
        how: How to get the local files.

    Raises:
        ImportError: When ``datasets`` is not installed (names the package to install).
        DataNotFoundError: When the hub cannot be reached or has no such dataset.
    """
    try:
        import datasets
    except ImportError as exc:
        raise ImportError(
            f"Reading {hf_id!r} from the Hugging Face hub needs the 'datasets' package: "
            "pip install 'spectrans-lra[hf]'."
        ) from exc
    try:
        return datasets.load_dataset(hf_id)
    except Exception as exc:  # offline, unknown id, ...: one clear message instead
        raise DataNotFoundError(
            local, expected, f"{how} (loading {hf_id!r} from the hub failed: {exc})"
        ) from exc


def datasets_importable() -> bool:
    """Whether the ``datasets`` package can be imported (it is not imported here)."""
    import importlib.util
    import sys

    if sys.modules.get("datasets") is not None:
        return True
    return importlib.util.find_spec("datasets") is not None
