"""Fake campaign runs for the scheduling tests: ``'LPP'`` is a ListOps and two Pathfinder runs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import campaign_plan  # noqa: E402


def fake_runs(spec: str) -> list[campaign_plan.Run]:
    """'LPP' -> ListOps (1 per GPU) and Pathfinder (4 per GPU) runs, seeds 0, 1, 2, ...

    Each has a preset of 10 steps.
    """
    preset = campaign_plan.Preset(Path("x.yaml"), True, "x", 10)
    return [
        campaign_plan.Run(
            "listops" if c == "L" else "pathfinder", c, i, preset, 1 if c == "L" else 4
        )
        for i, c in enumerate(spec)
    ]
