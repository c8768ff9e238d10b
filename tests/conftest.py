"""Shared pytest setup: deterministic seeds, few threads, the repo root importable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Under pytest-xdist each worker gets one intra-op thread: 2 workers on 2 cores.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity set, capped by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per usable CPU, or ``PYTEST_XDIST_AUTO_NUM_WORKERS`` where set.

    xdist's own count is the host's physical cores through psutil where psutil is installed,
    which ignores the affinity set and container quotas.
    """
    requested = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    return int(requested) if requested else usable_cpus()


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)


@pytest.fixture
def repo_root() -> Path:
    """The repository root (where train.py and conf/ live)."""
    return REPO_ROOT
