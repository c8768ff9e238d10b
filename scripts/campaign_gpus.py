"""The GPUs a campaign places its runs on: how many, their physical ids, and fractional sharing.

A GPU has capacity 1; a run of a task with ``per_gpu = k`` takes ``1/k`` of it
(:class:`GpuPool`), and a data-parallel run over ``g`` GPUs takes ``g`` whole GPUs.
:func:`schedule` places queued runs in plan order; a run that does not fit reserves the
roomiest GPU(s) so that later, smaller runs cannot starve it.
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign_plan import Run  # noqa: E402


def gpu_count() -> int:
    """CUDA devices visible to this process (0 without torch or CUDA)."""
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def physical_gpu(index: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` entry of GPU ``index`` as this process numbers its GPUs.

    Under ``CUDA_VISIBLE_DEVICES=1,3`` the campaign sees GPUs 0 and 1, which are the
    machine's 1 and 3: a run on GPU 0 must get ``CUDA_VISIBLE_DEVICES=1``.
    """
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[index].strip() if index < len(visible) else str(index)


class GpuPool:
    """Fractional GPU capacity: each GPU holds runs whose shares sum to at most 1."""

    def __init__(self, gpus: int) -> None:
        self.free = [Fraction(1)] * gpus

    def pick(self, share: Fraction, exclude: set[int] = frozenset()) -> int | None:  # type: ignore[assignment]
        """The GPU with the most room (lowest index on ties) that fits ``share``, or None."""
        best = None
        for g, room in enumerate(self.free):
            if g not in exclude and room >= share and (best is None or room > self.free[best]):
                best = g
        return best

    def idle(self, exclude: set[int]) -> list[int]:
        """The GPUs outside ``exclude`` that no run occupies, lowest index first."""
        return [g for g, room in enumerate(self.free) if g not in exclude and room == 1]

    def roomiest(self, exclude: set[int]) -> int | None:
        """The GPU with the most room outside ``exclude``."""
        cands = [g for g in range(len(self.free)) if g not in exclude]
        return max(cands, key=lambda g: (self.free[g], -g)) if cands else None

    def take(self, g: int, share: Fraction) -> None:
        """Occupy ``share`` of GPU ``g``."""
        self.free[g] -= share

    def give(self, g: int, share: Fraction) -> None:
        """Free ``share`` of GPU ``g``."""
        self.free[g] += share


def schedule(
    queue: list[Run], pool: GpuPool, limit: int | None = None
) -> list[tuple[Run, tuple[int, ...]]]:
    """Assign queued runs (plan order) to GPUs; returns ``(run, gpus)`` and takes capacity.

    A run of one GPU takes ``1 / per_gpu`` of the roomiest GPU that fits it; a run of
    ``g > 1`` GPUs takes ``g`` idle GPUs whole. A run that does not fit reserves the roomiest
    unreserved GPU (``g`` of them for a multi-GPU run), so later smaller runs cannot starve it.
    """
    placed: list[tuple[Run, tuple[int, ...]]] = []
    reserved: set[int] = set()
    for run in queue:
        if limit is not None and len(placed) >= limit:
            break
        if run.gpus > len(pool.free):
            continue  # never fits on this machine (the campaign holds such runs back)
        if run.gpus > 1:
            idle = pool.idle(reserved)
            if len(idle) >= run.gpus:
                gpus = tuple(idle[: run.gpus])
                for g in gpus:
                    pool.take(g, Fraction(1))
                placed.append((run, gpus))
                continue
            for _ in range(run.gpus):
                r = pool.roomiest(reserved)
                if r is None:
                    break
                reserved.add(r)
            if len(reserved) >= len(pool.free):
                break
            continue
        share = Fraction(1, run.per_gpu)
        g = pool.pick(share, reserved)
        if g is None:
            r = pool.roomiest(reserved)
            if r is None:
                break
            reserved.add(r)
            continue
        pool.take(g, share)
        placed.append((run, (g,)))
    return placed
