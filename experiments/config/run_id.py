"""Run ids: short random ids that tell runs of one name and one second apart."""

from __future__ import annotations

import uuid


def new_run_id() -> str:
    """A short random id that keeps two runs started in the same second apart."""
    return uuid.uuid4().hex[:6]
