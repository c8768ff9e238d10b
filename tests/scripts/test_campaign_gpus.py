"""scripts/campaign_gpus.py: placing runs on fractional GPU capacity, physical GPU ids."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import campaign_gpus  # noqa: E402

from tests.campaign_runs import fake_runs  # noqa: E402


@pytest.mark.parametrize(
    ("gpus", "spec", "placed"),
    [
        (2, "LLL", [(0, 0), (1, 1)]),
        (1, "PPPPPP", [(0, 0), (1, 0), (2, 0), (3, 0)]),
        (2, "PPPPPPPPPP", [(i, i % 2) for i in range(8)]),
        # L cannot fit next to the two P: it reserves GPU 0; the later P fill GPU 1 only
        (2, "PPLPPPP", [(0, 0), (1, 1), (3, 1), (4, 1), (5, 1)]),
        (0, "LP", []),
    ],
)
def test_schedule_on_fake_gpu_counts(gpus: int, spec: str, placed: list) -> None:
    runs = fake_runs(spec)
    pool = campaign_gpus.GpuPool(gpus)
    got = campaign_gpus.schedule(runs, pool)
    assert [(r.seed, gpus) for r, gpus in got] == [(seed, (g,)) for seed, g in placed]
    assert all(room >= 0 for room in pool.free)


def _two_gpu_run(runs: list, index: int) -> list:
    runs[index].gpus, runs[index].per_gpu = 2, 1
    return runs


@pytest.mark.parametrize(
    ("gpus", "spec", "wide", "placed"),
    [
        # the two-GPU run takes both idle GPUs whole; nothing fits beside it
        (2, "LPP", 0, [(0, (0, 1))]),
        # a Pathfinder run holds part of GPU 0: the two-GPU run reserves both, later runs wait
        (2, "PLP", 1, [(0, (0,))]),
        # on four GPUs it takes the two idle ones after the first run's
        (4, "LLLP", 1, [(0, (0,)), (1, (1, 2)), (2, (3,))]),
        # on one GPU it never fits and blocks nothing
        (1, "LLP", 0, [(1, (0,))]),
    ],
)
def test_a_multi_gpu_run_takes_whole_idle_gpus(gpus: int, spec: str, wide: int, placed) -> None:
    pool = campaign_gpus.GpuPool(gpus)
    got = campaign_gpus.schedule(_two_gpu_run(fake_runs(spec), wide), pool)
    assert [(r.seed, on) for r, on in got] == placed
    assert all(room >= 0 for room in pool.free)


def test_pool_gives_back_capacity() -> None:
    pool = campaign_gpus.GpuPool(1)
    assert campaign_gpus.schedule(fake_runs("L"), pool)
    assert campaign_gpus.schedule(fake_runs("P"), pool) == []
    pool.give(0, Fraction(1))
    assert len(campaign_gpus.schedule(fake_runs("PPPPP"), pool, limit=2)) == 2


def test_runs_get_the_machine_gpu_through_an_inherited_visible_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    assert [campaign_gpus.physical_gpu(i) for i in (0, 1)] == ["1", "3"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert campaign_gpus.physical_gpu(1) == "1"
