"""scripts/campaign_segments.py: busy GPU time and the throughput of runs sharing GPUs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import campaign_segments  # noqa: E402


def test_shared_throughput_counts_each_gpu_second_once() -> None:
    """Two runs side by side, a third after one of them, on GPU 0; one run alone on GPU 1."""
    seg = campaign_segments.Segment
    segments = [
        seg(gpu=0, start=0.0, end=100.0, steps=4000),
        seg(gpu=0, start=0.0, end=60.0, steps=3000),
        seg(gpu=0, start=60.0, end=100.0, steps=2000),
        seg(gpu=1, start=10.0, end=60.0, steps=1000),
    ]
    # GPU 0 busy 100 s, GPU 1 busy 50 s: 10000 steps / 150 s
    assert campaign_segments.shared_throughput(segments) == pytest.approx(10000 / 150)
    rates = sum(s.steps / (s.end - s.start) for s in segments)
    assert rates == pytest.approx(40 + 50 + 50 + 20)  # what summing segment rates claimed


@pytest.mark.parametrize(
    ("spans", "busy"),
    [([], 0.0), ([(0, 5), (5, 7)], 7.0), ([(0, 10), (2, 3)], 10.0), ([(4, 6), (0, 1)], 3.0)],
)
def test_busy_seconds_is_the_union_length(spans: list, busy: float) -> None:
    assert campaign_segments.busy_seconds(spans) == busy
