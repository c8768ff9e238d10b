"""scripts/head_units.py: a run checkpoint's live head units, as its record counts them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import head_units  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("head_units")
    command = [
        sys.executable, "train.py", "debug=default", "task=listops",
        f"paths.output_dir={root}/runs", f"paths.data_dir={root}/data",
        f"hydra.run.dir={root}/run", "trainer.enable_progress_bar=false",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return root / "run"


def test_counts_the_units_of_the_checkpoint(run_dir: Path, capsys) -> None:
    assert head_units.main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    record = json.loads((run_dir / "metrics.json").read_text())
    assert "at step 4:" in out and f"of {record['config']['model']['head_hidden_dim']}" in out
    assert isinstance(record["head_live_units"], int)


def test_a_dead_head_is_zero_units_and_constant_logits(
    run_dir: Path, capsys, tmp_path: Path
) -> None:
    dead = tmp_path / "dead"
    (dead / "checkpoints").mkdir(parents=True)
    (dead / ".hydra").mkdir()
    (dead / ".hydra" / "config.yaml").write_text((run_dir / ".hydra" / "config.yaml").read_text())
    state = torch.load(
        run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    state["state_dict"]["model.head.dense.bias"].fill_(-1e3)
    torch.save(state, dead / "checkpoints" / "last.ckpt")
    assert head_units.main([str(dead)]) == 0
    out = capsys.readouterr().out
    assert "head live units 0 of" in out and "logits std over them [0.0, 0.0" in out


def test_a_folder_without_a_checkpoint_is_one_sentence(tmp_path: Path, capsys) -> None:
    assert head_units.main([str(tmp_path)]) == 2
    assert "does not exist: give a run folder" in capsys.readouterr().err
