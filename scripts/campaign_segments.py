"""A run's segments (one per command that trained it) and the throughput of runs sharing GPUs.

Each command that trains a run adds a segment to the run folder's side-car
(``campaign.json``: where, when and how many steps); :func:`shared_throughput` turns the
segments of one command into training steps per second of busy GPU time.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign_plan import SIDE_CAR, Run, read_json  # noqa: E402


@dataclass(frozen=True)
class Segment:
    """One finished segment of a run: where, when (monotonic seconds) and how many steps."""

    gpu: int
    start: float
    end: float
    steps: float  # a run over g GPUs puts a segment of steps / g on each of them


def busy_seconds(spans: list[tuple[float, float]]) -> float:
    """Length of the union of ``[start, end]`` intervals (time with at least one run going)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def shared_throughput(segments: list[Segment]) -> float:
    """Training steps per second of busy GPU time, summed over the runs sharing a GPU.

    ``sum(steps) / sum_g busy_g`` where ``busy_g`` is the time GPU ``g`` had at least one of
    the segments running. Summing each segment's own rate would count a GPU twice when one run
    follows another on it inside one command.
    """
    busy = sum(
        busy_seconds([(s.start, s.end) for s in segments if s.gpu == g])
        for g in {s.gpu for s in segments}
    )
    return sum(s.steps for s in segments) / busy if busy > 0 else 0.0


def append_segment(run_dir: Path, run: Run, segment: dict) -> None:
    """Add or update the last segment in ``run_dir/campaign.json``."""
    path = run_dir / SIDE_CAR
    side = read_json(path) or {
        "task": run.task,
        "variant": run.variant,
        "seed": run.seed,
        "preset": run.preset.path.stem,
        "segments": [],
    }
    segs = side["segments"]
    if segs and segs[-1].get("started_at") == segment.get("started_at"):
        segs[-1].update(segment)
    else:
        segs.append(segment)
    path.write_text(json.dumps(side, indent=1) + "\n")
