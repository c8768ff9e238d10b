"""The per-variant summary (the README's accuracy table) and the per-run table."""

import json
from pathlib import Path

import pytest

from experiments import results
from experiments.results_summary import (
    README_END,
    README_START,
    reference_text,
    replace_readme_block,
    runs_markdown,
    summary_block,
    summary_rows,
)

ROOT = Path(__file__).resolve().parents[2]


def _record(task: str, variant: str, seed: int, acc: float, **extra) -> dict:
    rec = {
        "schema_version": 1,
        "status": "completed",
        "protocol": "lra",
        "task": task,
        "attention": variant,
        "model": "encoder",
        "variant": variant,
        "seed": seed,
        "num_params": 1000,
        "val_acc_best": acc,
        "test_acc": acc,
        "train_tokens_per_s": 1.5e6 * (1 + seed),
        "peak_memory_bytes": 2**30 * (1 + seed),
        "peak_memory_kind": "cuda_max_allocated",
        "precision": "bf16-mixed",
        "device": "GPU (test)",
        "git_commit": f"{seed}" * 40,
        "finished_at": f"2026-01-0{seed + 1}T00:00:00",
        "wall_time_s": 600.0,
        "steps": 5000,
    }
    rec.update(extra)
    return rec


def _usable(root: Path) -> list:
    records = [results.load_record(p) for p in results.find_metric_files([root])]
    return results.split_records(records)[0]


def _write(root: Path, name: str, rec: dict) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "metrics.json").write_text(json.dumps(rec))


def test_summary_rows_state_each_seed(tmp_path: Path) -> None:
    _write(tmp_path, "a", _record("listops", "softmax", 0, 0.30))
    _write(tmp_path, "b", _record("listops", "softmax", 1, 0.40))
    _write(tmp_path, "c", _record("listops", "softmax", 2, 0.17, chance_acc=0.17))
    _write(
        tmp_path,
        "d",
        _record("pathfinder", "wavelet", 0, 0.4936, chance_acc=0.5064, head_live_units=0),
    )
    rows = summary_rows(_usable(tmp_path))
    assert rows[0].startswith("| task | variant |") and len(rows) == 4
    softmax = rows[2]
    assert "| listops | softmax | 0 `0000000`, 1 `1111111`, 2 `2222222` |" in softmax
    assert "29.00 ± 11.53 (30.00, 40.00, 17.00 at chance)" in softmax
    assert "| 1.50M, 3.00M, 4.50M | 3.0 GiB | Transformer 36.37 (LRA paper) |" in softmax
    assert rows[3] == (
        "| pathfinder | wavelet | 0 `0000000` | 49.36 at chance, dead head | 1.50M | 1.0 GiB |  |"
    )


def test_reference_text() -> None:
    assert reference_text("pathfinder", "fnet") == "FNet 77.80 (FNet paper)"
    assert reference_text("listops", "performer") == "Favor-256 19.56 (xformers)"
    assert reference_text("pathx", "softmax") == ""
    assert reference_text("listops", "s4d") == ""
    assert reference_text("listops", "wavelet") == ""


def test_runs_table_has_one_row_per_run(tmp_path: Path) -> None:
    _write(tmp_path, "a", _record("listops", "softmax", 0, 0.30))
    _write(tmp_path, "b", _record("listops", "softmax", 1, 0.40, wall_time_s=None))
    text = runs_markdown(_usable(tmp_path), "## Provenance\n")
    rows = [line for line in text.splitlines() if line.startswith("| listops")]
    assert len(rows) == 2
    assert "| 0 | 30.00 | 5000 | 10.0 | 1.50M | 1.00 | GPU (test) |" in rows[0]
    assert "| 1 | 40.00 | 5000 | n/a | 3.00M |" in rows[1]


def test_readme_table_is_the_summary_of_the_committed_records() -> None:
    """The README's accuracy table is generated: it must equal the summary of results/runs."""
    readme = (ROOT / "README.md").read_text()
    assert summary_block(_usable(ROOT / "results" / "runs")) in readme, (
        "README.md's LRA summary block differs from the records: run "
        "`python -m experiments.results --runs results/runs --readme README.md`"
    )


def test_readme_option_rewrites_only_the_block(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _write(runs, "a", _record("listops", "softmax", 0, 0.30))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\n{README_START}\nold table\n{README_END}\n\nAfter.\n")
    argv = ["--runs", str(runs), "--out", str(tmp_path / "out"), "--readme", str(readme)]
    assert results.main(argv) == 0
    text = readme.read_text()
    assert text.startswith("# Title\n\n" + README_START) and text.endswith(
        README_END + "\n\nAfter.\n"
    )
    assert "old table" not in text and "| listops | softmax | 0 `0000000` | 30.00 |" in text
    assert summary_block(_usable(runs)) in (tmp_path / "out" / "lra_summary.md").read_text()


def test_readme_without_markers_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    _write(runs, "a", _record("listops", "softmax", 0, 0.30))
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    argv = ["--runs", str(runs), "--out", str(tmp_path / "out"), "--readme", str(readme)]
    assert results.main(argv) == 2
    assert "no '<!-- lra-summary:start" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and readme.read_text() == "# no markers\n"
    with pytest.raises(ValueError, match="marker lines"):
        replace_readme_block("text", "block")


def test_runs_off_the_protocol_get_no_published_figure(tmp_path: Path) -> None:
    _write(tmp_path, "a", _record("listops", "softmax", 0, 0.30, protocol="custom"))
    records = [results.load_record(p) for p in results.find_metric_files([tmp_path])]
    usable = results.split_records(records, ("custom",))[0]
    (row,) = summary_rows(usable)[2:]
    assert "| softmax [custom] |" in row and row.endswith("| 1.0 GiB |  |")
