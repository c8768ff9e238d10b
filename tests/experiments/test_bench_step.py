"""The step benchmark runs on CPU at tiny shapes and writes its CSV and table."""

from __future__ import annotations

import csv

import pytest
import torch

from experiments import bench_step
from experiments.bench_step import CSV_COLUMNS, AnchorEncoder, load_setup, main


def test_writes_csv_and_markdown_on_cpu(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)  # CPU compile is slow
    argv = [
        "--device", "cpu", "--tasks", "pathfinder,image",
        "--mixers", "softmax,lst-dct,global_filter",
        "--batch", "2", "--max-len", "16", "--steps", "1", "--warmup", "1",
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    with (tmp_path / "train_step.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [(r["task"], r["mixer"]) for r in rows] == [
        (t, m) for t in ("pathfinder", "image") for m in ("softmax", "lst-dct", "global_filter")
    ]
    for r in rows:
        assert float(r["ms_per_step"]) > 0 and float(r["tokens_per_s"]) > 0
        assert float(r["anchor_eager_ms"]) > 0 and float(r["anchor_compiled_ms"]) > 0
        assert r["compile"] == "eager" and r["dtype"] == "fp32" and r["device"]
        assert r["path"] == ("fast" if r["mixer"] == "lst-dct" else "")
    text = (tmp_path / "train_step.md").read_text()
    assert "## pathfinder (batch 2, N = 16" in text and "| lst-dct |" in text


def test_preset_model_shape_and_optimizer_step_changes_weights() -> None:
    setup = load_setup("softmax", "pathfinder", batch=2, max_len=8)
    assert setup.shape["hidden"] == 32 and setup.shape["layers"] == 4
    assert setup.shape["heads"] == 4 and setup.shape["head_dim"] == 4
    from experiments.module import make_optimizer, parameter_groups

    model = setup.model.train()
    data = bench_step.random_batch(setup, torch.device("cpu"))
    inputs = {k: v for k, v in data.items() if k != "labels"}
    opt = make_optimizer(parameter_groups(model, 0.0), setup.optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    step = bench_step.make_train_step(
        model, lambda: model(**inputs), data["labels"], opt, "fp32", torch.device("cpu")
    )
    step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))


def test_anchor_rounds_head_width_up_to_eight() -> None:
    anchor = AnchorEncoder(10, 3, 12, hidden=16, layers=1, ffn=8, heads=4, head_dim=4)
    assert anchor.head_dim == 8
    assert anchor(torch.randint(0, 10, (2, 12))).shape == (2, 3)


def test_unknown_mixer_is_one_sentence() -> None:
    with pytest.raises(SystemExit, match="unknown value"):
        main(["--mixers", "nope"])
