"""scripts/pathfinder_fidelity.py: per-image statistics measured from the pixels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import pathfinder_fidelity  # noqa: E402


def _image_with_markers() -> np.ndarray:
    img = np.zeros((32, 32), dtype=np.uint8)
    img[5:8, 5:8] = 240  # two 3x3 markers far apart
    img[24:27, 24:27] = 240
    return img


def test_layout_shares_count_ink_per_half() -> None:
    img = _image_with_markers()
    stats = pathfinder_fidelity.image_stats(img, label=1, radius=1.5)
    assert stats["left"] == pytest.approx(0.5) and stats["top"] == pytest.approx(0.5)
    img[0:4, 0:16] = 100  # 64 more ink pixels, all in the top-left quarter
    stats = pathfinder_fidelity.image_stats(img, label=1, radius=1.5)
    assert stats["left"] == pytest.approx((9 + 64) / (18 + 64))
    assert stats["top"] == pytest.approx((9 + 64) / (18 + 64))
    mirrored = pathfinder_fidelity.image_stats(img[:, ::-1].copy(), label=1, radius=1.5)
    assert mirrored["left"] == pytest.approx(1 - stats["left"])
    assert mirrored["top"] == pytest.approx(stats["top"])


def test_markers_are_the_two_brightest_separate_blobs() -> None:
    found = sorted(pathfinder_fidelity.find_markers(_image_with_markers(), radius=1.5))
    assert found == [(6, 6), (25, 25)]
