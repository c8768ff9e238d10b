"""One table from an LRA task name to its data module class and config class.

A task is declared once, at its data module, with :func:`register_task` (as token mixers are
with :func:`spectrans.registry.register_mixer`)::

    @register_task("listops", ListOpsTaskConfig, order=0)
    class ListOpsDataModule(LRADataModule): ...

Everything else derives from this table: :func:`names` (the ``TASKS`` of the data command
line and of the results tables), the discriminated config union of
:func:`experiments.data.config.parse_task_config` and
:func:`experiments.data.datamodule_class`.

The table fills when the task modules are imported; every module of ``experiments.data`` is
imported on the first query, so a new task is one new module there plus its
``conf/task/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from spectrans.declarations import (
    check_name_free,
    check_name_literal,
    class_path,
    import_package_modules,
)

if TYPE_CHECKING:
    from experiments.data.config import TaskConfigBase
    from experiments.data.datamodule import LRADataModule

PACKAGE = "experiments.data"
"""Package whose task modules are imported to fill the table."""
DEFAULT_ORDER = 100
"""Listing position of a task registered without ``order`` (after the six LRA tasks)."""

ModuleT = TypeVar("ModuleT", bound=type)


@dataclass(frozen=True)
class TaskEntry:
    """A registered task.

    Attributes:
        name: Task name (``task.name`` in the config, the union discriminator).
        config_class: The pydantic config class whose ``name`` literal is ``name``.
        cls: The data module class.
        order: Position in listings and results tables (LRA's order for the six tasks).
    """

    name: str
    config_class: type[TaskConfigBase]
    cls: type[LRADataModule]
    order: int

    @property
    def datamodule_path(self) -> str:
        """``module:ClassName`` of the data module."""
        return class_path(self.cls)


_TABLE: dict[str, TaskEntry] = {}
_loaded = False


def register_task(
    name: str, config_class: type[TaskConfigBase], *, order: int = DEFAULT_ORDER
) -> Callable[[ModuleT], ModuleT]:
    """Class decorator that adds a data module to the table under ``name``.

    Raises:
        ValueError: ``name`` is taken by another class, or the config's ``name`` literal is
            not ``name``.
    """
    check_name_literal(config_class, name)

    def decorate(cls: ModuleT) -> ModuleT:
        old = _TABLE.get(name)
        check_name_free("task", name, old.datamodule_path if old else None, cls)
        _TABLE[name] = TaskEntry(name, config_class, cls, order)  # type: ignore[arg-type]
        return cls

    return decorate


def _load() -> dict[str, TaskEntry]:
    """Import every task module once (their decorators fill the table); return the table."""
    global _loaded
    if not _loaded:
        _loaded = True
        import_package_modules([PACKAGE])
    return _TABLE


def entries() -> list[TaskEntry]:
    """Registered tasks by ``order``, then name."""
    return sorted(_load().values(), key=lambda e: (e.order, e.name))


def names() -> tuple[str, ...]:
    """Registered task names, in :func:`entries` order."""
    return tuple(e.name for e in entries())


def config_classes() -> tuple[type[TaskConfigBase], ...]:
    """Every registered config class, in :func:`names` order."""
    return tuple(e.config_class for e in entries())


def get_entry(name: str) -> TaskEntry:
    """Look up one task.

    Raises:
        KeyError: with a sentence listing the valid names.
    """
    table = _load()
    if name not in table:
        raise KeyError(f"Unknown LRA task {name!r}; use one of {', '.join(names())}.")
    return table[name]
