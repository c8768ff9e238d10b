"""scripts/learning_curves.py: binned curves from a run's CSV log and its record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import learning_curves as curves  # noqa: E402


def _run(root: Path, name: str) -> Path:
    run = root / name
    (run / "csv").mkdir(parents=True)
    (run / "csv" / "metrics.csv").write_text(
        "epoch,step,train/acc,train/loss,val/acc,val/head_live_units\n"
        "0,49,0.5,0.70,,\n"
        "0,99,0.7,0.50,,\n"
        "0,311,,,0.61,12.0\n"
        "1,1049,0.9,0.30,,\n"
        "1,1247,,,0.75,3.0\n"
        "1,1259,,,0.72,0.0\n"
    )
    record = {"status": "incomplete", "steps": 1260, "test_acc": 0.7345, "command": "python x"}
    (run / "metrics.json").write_text(json.dumps(record))
    return run


def test_bins_average_training_and_take_the_best_validation(tmp_path: Path) -> None:
    rows = curves.read_rows(_run(tmp_path, "a") / "csv" / "metrics.csv")
    assert curves.bins(rows, 1000) == [
        (0, "0.6000", "0.6000", "61.00", "12"),
        (1000, "0.3000", "0.9000", "75.00", "0"),  # the bin's last validation
    ]
    assert curves.bins(rows, 100)[1] == (300, "", "", "61.00", "12")  # no training row


def test_table_names_each_run_and_its_record(tmp_path: Path) -> None:
    out = tmp_path / "t.md"
    assert curves.main([str(_run(tmp_path, "a")), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| a | 1,000 | 0.3000 | 0.9000 | 75.00 | 0 |" in text
    assert "| a | incomplete | 1,260 | 73.45 | `python x` |" in text


def test_a_folder_without_logs_is_one_sentence(tmp_path: Path, capsys) -> None:
    assert curves.main([str(tmp_path), "--bin", "10"]) == 2
    assert "not a run folder with its logs" in capsys.readouterr().err
    assert curves.main([str(_run(tmp_path, "b")), "--bin", "0"]) == 2
