"""experiments.pathfinder_check: a CNN trained on a Pathfinder folder through the data module."""

from __future__ import annotations

from pathlib import Path

import torch

from experiments import pathfinder_check
from experiments.data.pathfinder_generator import generate_pathfinder


def test_cnn_maps_images_to_two_logits() -> None:
    model = pathfinder_check.make_cnn(channels=8)
    assert model(torch.rand(3, 1, 32, 32)).shape == (3, 2)


def test_trains_on_a_generated_folder_and_writes_the_table(tmp_path: Path) -> None:
    folder = tmp_path / "pathfinder32" / "curv_contour_length_14"
    generate_pathfinder(folder, num_images=40, workers=1, progress=False)
    out = tmp_path / "check.md"
    argv = ["--data-dir", str(tmp_path), "--seconds", "0.5", "--device", "cpu"]
    assert pathfinder_check.main([*argv, "--batch-size", "8", "--out", str(out)]) == 0
    text = out.read_text()
    assert "Train 32, validation 4 images" in text
    rows = [line for line in text.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 1 and rows[0].endswith("|")


class _ModeReader(torch.nn.Module):
    """Answers class 1 in training mode and class 0 in eval mode."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        answer = torch.tensor([0.0, 1.0]) if self.training else torch.tensor([1.0, 0.0])
        return answer.expand(tokens.shape[0], 2)  # (b, 2)


def test_accuracy_evaluates_in_the_mode_asked_and_leaves_training_mode_on() -> None:
    model, tokens, ones = _ModeReader(), torch.zeros(10, 4, dtype=torch.long), torch.ones(10)
    assert pathfinder_check.accuracy(model, tokens, ones.long(), batch=3) == 0.0
    assert model.training
    assert pathfinder_check.accuracy(model, tokens, ones.long(), batch=3, dropout=True) == 1.0
    assert model.training
