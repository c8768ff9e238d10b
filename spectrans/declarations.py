"""Shared mechanics of the declare-at-definition tables (mixers here, tasks in the harness).

A table maps a name to the class declared under it; its config class must carry the same
name as its ``name`` literal, a name belongs to one class, and the table is filled by
importing every module of the packages that hold the declarations.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from pydantic import BaseModel


def check_name_literal(config_class: type[BaseModel], name: str) -> None:
    """Raise ``ValueError`` unless ``config_class.name`` defaults to ``name``."""
    literal = getattr(config_class.model_fields.get("name"), "default", None)
    if literal != name:
        raise ValueError(
            f"{config_class.__name__}.name defaults to {literal!r}; it must be {name!r} to "
            f"register it as '{name}'"
        )


def class_path(cls: type) -> str:
    """``module:QualifiedName`` of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def check_name_free(kind: str, name: str, taken_by: str | None, cls: type) -> None:
    """Raise ``ValueError`` when ``name`` already belongs to a class other than ``cls``.

    Args:
        kind: What the table holds, for the message (e.g. ``token mixer``).
        name: The name being declared.
        taken_by: :func:`class_path` of the class that holds ``name`` now, or None.
        cls: The class being declared.
    """
    if taken_by is not None and taken_by != class_path(cls):
        raise ValueError(f"{kind} name '{name}' is already taken by {taken_by}")


def import_package_modules(package_names: Iterable[str]) -> None:
    """Import every public module of each package (their decorators fill a table)."""
    for package_name in package_names:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")
