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


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.manual_seed(0)


@pytest.fixture
def repo_root() -> Path:
    """The repository root (where train.py and conf/ live)."""
    return REPO_ROOT
