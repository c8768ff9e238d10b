"""LRA data: task configs, one data module per task, generators for ListOps and Pathfinder.

Entry point: :func:`build_datamodule` (``docs/interfaces.md`` §3). Command line:
``python -m experiments.data <task> [options]``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from experiments.data.config import TaskConfig, parse_task_config
from experiments.data.errors import DataCorruptError, DataError, DataNotFoundError

if TYPE_CHECKING:
    from experiments.data.datamodule import LRADataModule

__all__ = [
    "DataCorruptError",
    "DataError",
    "DataNotFoundError",
    "LRADataModule",
    "TaskConfig",
    "build_datamodule",
    "datamodule_class",
    "parse_task_config",
]


def __getattr__(name: str) -> Any:
    # Lightning is imported only when a data module is needed (generators stay light).
    if name == "LRADataModule":
        from experiments.data.datamodule import LRADataModule

        return LRADataModule
    raise AttributeError(f"module 'experiments.data' has no attribute {name!r}")


def datamodule_class(name: str) -> type[LRADataModule]:
    """The data module class of a task name (see :mod:`experiments.data.registry`).

    Raises:
        KeyError: with a sentence listing the registered names.
    """
    from experiments.data.registry import get_entry

    return get_entry(name).cls


def build_datamodule(
    task_cfg: Any,
    *,
    data_dir: str | os.PathLike[str],
    batch_size: int,
    num_workers: int = 0,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> LRADataModule:
    """Build the data module of a task.

    Args:
        task_cfg: A task config model or a dict with its ``name`` (validated here).
        data_dir: Root of the LRA data (``lra_release/lra_release`` fits as is).
        batch_size: Batch size of every loader.
        num_workers: DataLoader workers.
        seed: Seed of the training shuffle.
        cache_dir: Cache folder of the tokenised splits (default ``<data_dir>/.cache``).

    Returns:
        An :class:`LRADataModule` whose ``vocab_size``, ``num_classes``, ``max_length``,
        ``is_pair`` and ``input_type`` are set already.
    """
    cfg = parse_task_config(task_cfg)
    cls = datamodule_class(cfg.name)
    return cls(
        cfg,
        data_dir=data_dir,
        batch_size=batch_size,
        num_workers=num_workers,
        seed=seed,
        cache_dir=cache_dir,
    )
