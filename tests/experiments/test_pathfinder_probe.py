"""experiments.pathfinder_probe: row and column labels of images, and a short probe run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from experiments import pathfinder_probe
from experiments.data.pathfinder_generator import generate_pathfinder


def test_rows_and_columns_swap_when_the_image_is_transposed() -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (50, 6, 6))  # (M, S, S)
    flat = images.flatten(1)  # row-major tokens
    flat_t = images.transpose(1, 2).flatten(1)  # the same images turned
    labels = torch.zeros(50, dtype=torch.long)
    rows = pathfinder_probe.probe_labels(flat, labels, "rows")
    columns = pathfinder_probe.probe_labels(flat, labels, "columns")
    assert torch.equal(rows, pathfinder_probe.probe_labels(flat_t, labels, "columns"))
    assert torch.equal(columns, pathfinder_probe.probe_labels(flat_t, labels, "rows"))
    assert 0 < rows.sum() < 50 and not torch.equal(rows, columns)


def test_ink_in_the_top_left_corner_is_top_and_left() -> None:
    image = torch.zeros(1, 4, 4, dtype=torch.long)
    image[0, 0, 1] = 200  # row 0, column 1
    flat, labels = image.flatten(1), torch.tensor([1])
    assert pathfinder_probe.probe_labels(flat, labels, "rows").item() == 1
    assert pathfinder_probe.probe_labels(flat, labels, "columns").item() == 1
    assert pathfinder_probe.probe_labels(flat.flip(1), labels, "rows").item() == 0
    assert pathfinder_probe.probe_labels(flat, labels, "labels").item() == 1
    with pytest.raises(ValueError, match="unknown target 'diagonal'"):
        pathfinder_probe.probe_labels(flat, labels, "diagonal")


def test_trains_a_preset_on_a_generated_folder_and_writes_the_table(tmp_path: Path) -> None:
    folder = tmp_path / "pathfinder32" / "curv_contour_length_14"
    generate_pathfinder(folder, num_images=40, workers=1, progress=False)
    out = tmp_path / "probe.md"
    argv = ["--data-dir", str(tmp_path), "--steps", "2", "--eval-every", "1", "--device", "cpu"]
    argv += ["--batch-size", "4", "--target", "rows", "--out", str(out)]
    overrides = ["model.num_layers=1", "model.positional_encoding=sinusoidal2d"]
    assert pathfinder_probe.main([*argv, *overrides]) == 0
    text = out.read_text()
    assert "target `rows`" in text and "model.positional_encoding=sinusoidal2d" in text
    assert "Key mask: `task.mask=lra_nonzero`" in text  # the preset's, as training masks
    assert "Train 32 images, evaluated on 4 validation images" in text
    table = [line.split("|") for line in text.splitlines() if line.startswith("| ")]
    assert "dropout on" in table[0][5]
    assert [row[1].strip() for row in table[-2:]] == ["1", "2"]
    assert all(0 <= float(row[5]) <= 100 for row in table[-2:])


@pytest.mark.parametrize(("mode", "masked"), [("lra_nonzero", True), ("lengths", False)])
def test_the_model_sees_the_mask_training_gives_it(mode: str, masked: bool) -> None:
    seen = {}

    class Fake(torch.nn.Module):
        def forward(self, tokens, attention_mask=None):
            seen["mask"] = attention_mask
            return torch.zeros(len(tokens), 2)

    tokens = torch.tensor([[0, 3, 0, 255], [7, 0, 0, 1]])
    pathfinder_probe.MaskedAsTrained(Fake(), mode)(tokens)
    if masked:
        assert torch.equal(seen["mask"], tokens > 0)  # black pixels masked, as LRA's inputs > 0
    else:
        assert seen["mask"] is None  # full-length images: nothing to mask
