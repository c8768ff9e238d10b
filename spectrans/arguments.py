"""Passing a constructor's own arguments on to its parent by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def pick_args(values: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """The entries ``names`` of ``values`` (a constructor's ``locals()``), to pass on as kwargs.

    A subclass whose public signature repeats its parent's arguments passes them on with
    ``super().__init__(**pick_args(locals(), NAMES), ...)``, ``NAMES`` declared once.
    """
    return {name: values[name] for name in names}
