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


def test_head_spread_of_known_pre_activations() -> None:
    head = torch.nn.Linear(2, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        head.bias.copy_(torch.tensor([0.0, -10.0, 0.5]))
    wrapper = torch.nn.Module()
    wrapper.dense = head
    features = torch.tensor([[1.0, 1.0], [3.0, 3.0]])  # h: [1, -9, .5], [3, -7, .5]
    spread, offset, live = init_signal.head_spread(wrapper, features)
    # std over examples per unit: sqrt(2), sqrt(2), 0 -> median sqrt(2); |mean|: 2, 8, .5 -> 2
    assert spread == pytest.approx(2**0.5) and offset == pytest.approx(2.0)
    assert live == 2  # the second unit is negative for both examples
    assert init_signal.head_spread(torch.nn.Identity(), features) is None


def test_the_lra_init_lets_more_of_the_input_reach_the_logits(tmp_path: Path) -> None:
    """On tiny generated Pathfinder data: the table has one row per arm; the preset's head (the
    LRA code's LeCun normal) spreads its pre-activations wider than a std-0.02 head, and the
    LRA init everywhere makes the logits vary more than std 0.02 everywhere."""
    out = tmp_path / "signal.md"
    shared = [
        "experiment=lra/softmax-pathfinder",
        f"paths.data_dir={tmp_path}",
        "task.path=pathfinder32-tiny/curv_contour_length_14",
        "+task.generate={size: tiny, num_images: 40}",
        "data.batch_size=16",
        "data.num_workers=0",
    ]
    arms = [
        "model.head_init_weights=truncnormal002",
        "",
        "model.init_weights=xavier attention.init_weights=xavier",
    ]
    assert (
        init_signal.main([*shared, *[a for arm in arms for a in ("--arm", arm)], "--out", str(out)])
        == 0
    )
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0] for r in rows] == [
        "| model.head_init_weights=truncnormal002",
        "| (as composed)",
        "| model.init_weights=xavier attention.init_weights=xavier",
    ]
    cells = [[float(c) for c in r.strip("| ").split(" | ")[1:]] for r in rows]
    logit_spread = [c[1] for c in cells]
    head = [c[3] for c in cells]
    assert logit_spread[2] > 10 * logit_spread[0]
    assert head[1] > 4 * head[0]
    assert all(0 <= c[5] <= 32 for c in cells)  # live units of the 32 hidden ones
