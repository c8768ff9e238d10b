"""experiments.init_signal: spreads of pooled features and logits at initialisation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments import init_signal


def test_spreads_of_constant_and_varying_outputs() -> None:
    features = torch.tensor([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])  # (M, F)
    logits = torch.tensor([[0.5, 0.1], [0.5, 0.1], [0.5, 0.1]])  # (M, C)
    assert init_signal.spreads(features, logits) == (0.0, 0.0, 0.0)
    varying = torch.tensor([[1.0, -1.0], [3.0, 1.0]])
    feature, logit, margin = init_signal.spreads(varying, varying)
    # std over examples: sqrt(2) for both features; |mean|: 2 and 0, mean 1
    assert feature == pytest.approx(2**0.5)
    assert logit == pytest.approx(2**0.5)
    assert margin == pytest.approx(0.0)  # z1 - z0 = -2 for both examples


def test_the_lra_init_lets_more_of_the_input_reach_the_logits(tmp_path: Path) -> None:
    """On tiny generated Pathfinder data: the table has one row per arm, and the xavier arm's
    logits vary more across examples than those of the std-0.02 init."""
    out = tmp_path / "signal.md"
    shared = [
        "experiment=lra/softmax-pathfinder",
        f"paths.data_dir={tmp_path}",
        "task.path=pathfinder32-tiny/curv_contour_length_14",
        "+task.generate={size: tiny, num_images: 40}",
        "data.batch_size=16",
        "data.num_workers=0",
    ]
    arms = ["--arm", "", "--arm", "model.init_weights=xavier attention.init_weights=xavier"]
    assert init_signal.main([*shared, *arms, "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| (as composed)",
        "| model.init_weights=xavier attention.init_weights=xavier",
    ]
    logit_spread = [float(r.split(" | ")[2]) for r in rows]
    assert logit_spread[1] > 10 * logit_spread[0]
