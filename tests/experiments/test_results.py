import csv
import hashlib
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import results


def _record(task: str, variant: str, seed: int, acc: float | None, **extra) -> dict:
    rec = {
        "schema_version": 1,
        "status": "completed",
        "protocol": "lra",
        "failure_reason": None,
        "task": task,
        "attention": variant.split("-")[0],
        "model": "encoder",
        "variant": variant,
        "seed": seed,
        "num_params": 1000 + seed,
        "val_acc_best": acc,
        "test_acc": acc,
        "train_tokens_per_s": 1000.0 * (1 + seed),
        "eval_tokens_per_s": 3000.0,
        "peak_memory_bytes": 2**20 * (1 + seed),
        "peak_memory_kind": "cpu_max_rss",
        "precision": "32-true",
        "device": "cpu (test)",
        "git_commit": "abc1234",
        "finished_at": f"2026-01-0{seed + 1}T00:00:00",
    }
    rec.update(extra)
    return rec


def _write(root: Path, name: str, rec: dict | str) -> Path:
    path = root / name / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(rec if isinstance(rec, str) else json.dumps(rec))
    return path


TASK_ACCS = {
    "listops": (0.36, 0.38),
    "text": (0.64, 0.66),
    "retrieval": (0.57, 0.59),
    "image": (0.42, 0.40),
    "pathfinder": (0.71, 0.73),
}


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "outputs"
    for task, accs in TASK_ACCS.items():
        for seed, acc in enumerate(accs):
            _write(root, f"softmax_{task}_{seed}", _record(task, "softmax", seed, acc))
    # lst-dct: two tasks, one seed each, plus a completed Path-X run
    _write(root, "lst_listops", _record("listops", "lst-dct", 0, 0.30, transform="dct"))
    _write(root, "lst_image", _record("image", "lst-dct", 0, 0.35, transform="dct"))
    # Path-X failure for softmax (must count as 50 in avg6, and be listed)
    _write(
        root,
        "softmax_pathx",
        _record("pathx", "softmax", 0, None, status="failed", failure_reason="CUDA out of memory"),
    )
    # running / partial run
    _write(root, "softmax_text_running", _record("text", "softmax", 2, None, status="running"))
    # completed run missing test_acc, and one with no task
    _write(root, "perf_missing", _record("listops", "performer", 0, None))
    bad = _record("listops", "performer", 1, 0.2)
    del bad["task"]
    _write(root, "perf_notask", bad)
    # garbage file
    _write(root, "garbage", "{not json")
    # an archived duplicate of softmax listops seed 0 under results/runs, older finished_at
    archive = tmp_path / "results" / "runs"
    _write(
        archive,
        "old_copy",
        _record("listops", "softmax", 0, 0.10, finished_at="2025-01-01T00:00:00"),
    )
    return tmp_path


def _hashes(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("metrics.json")}


def _aggregate(root: Path):
    dirs = [root / "outputs", root / "multirun", root / "results" / "runs"]
    return results.aggregate(dirs, root / "out", "python -m experiments.results (test)")


def test_means_std_n_and_averages(runs: Path) -> None:
    summary = _aggregate(runs)
    assert summary["records"] == 18
    rows = {(r["kind"], r["variant"]): r for r in summary["rows"]}
    soft = rows[("ours", "softmax")]
    for task, accs in TASK_ACCS.items():
        pct = [100 * a for a in accs]
        assert soft[f"{task}_mean"] == pytest.approx(statistics.fmean(pct))
        assert soft[f"{task}_std"] == pytest.approx(abs(pct[0] - pct[1]) / math.sqrt(2))
        assert soft[f"{task}_n"] == 2
    # the archived duplicate (10 %) is not averaged in
    assert soft["listops_mean"] == pytest.approx(37.0)
    means5 = [100 * statistics.fmean(a) for a in TASK_ACCS.values()]
    assert soft["avg5"] == pytest.approx(sum(means5) / 5)
    assert soft["avg6"] == pytest.approx((sum(means5) + 50.0) / 6)  # failed Path-X -> 50
    assert soft["pathx_n"] == 0 and soft["pathx_text"] == "failed (1)"
    lst = rows[("ours", "lst-dct")]
    assert lst["listops_mean"] == pytest.approx(30.0) and lst["listops_std"] is None
    assert lst["avg5"] is None and lst["avg6"] is None  # three tasks missing
    assert ("ours", "performer") not in rows  # both performer records are unusable


def test_references_present_and_marked(runs: Path) -> None:
    summary = _aggregate(runs)
    refs = {r["variant"]: r for r in summary["rows"] if r["kind"] == "reference"}
    assert refs["Transformer"]["avg5"] == pytest.approx(54.39, abs=0.01)
    assert refs["Transformer"]["source"] == "LRA paper"
    assert refs["S4 (updated)"]["avg6"] == pytest.approx(86.09, abs=0.01)
    md = (runs / "out" / "lra_accuracy.md").read_text()
    assert "| **ref** | Transformer |" in md and "counts as **50**" in md
    with (runs / "out" / "lra_accuracy.csv").open() as fh:
        kinds = {row["variant"]: row["kind"] for row in csv.DictReader(fh)}
    assert kinds["Transformer"] == "reference" and kinds["softmax"] == "ours"


def test_excluded_runs_listed_with_reasons(runs: Path) -> None:
    _aggregate(runs)
    md = (runs / "out" / "lra_accuracy.md").read_text()
    section = md.split("## Incomplete, failed or excluded runs")[1]
    assert "status=failed: CUDA out of memory" in section
    assert "status=running" in section
    assert "missing field(s): test_acc" in section
    assert "missing field(s): task" in section
    assert "unreadable" in section
    assert "duplicate of" in section
    assert "cpu (test)" in md and "abc1234" in md and "git commit" in md


def test_raw_records_unchanged_and_outputs_written(runs: Path) -> None:
    before = _hashes(runs)
    summary = _aggregate(runs)
    assert _hashes(runs) == before
    out = runs / "out"
    assert {p.name for p in summary["files"]} >= {
        "lra_accuracy.md",
        "lra_accuracy.csv",
        "efficiency.md",
        "pareto_listops.png",
        "pareto_image.png",
    }
    assert not (out / "pareto_pathx.png").exists()  # no completed Path-X run
    for name in ("pareto_listops.png", "pareto_image.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    eff = (out / "efficiency.md").read_text()
    # softmax listops: two seeds, params mean 1000.5 -> "1,000" or "1,001"; tokens/s mean 1500
    assert "| listops | softmax | 2 |" in eff and "1,500" in eff and "2.0 MiB" in eff


def test_efficiency_rows_say_how_many_runs_shared_a_gpu(runs: Path) -> None:
    root = runs / "outputs"
    side = {"segments": [{"per_gpu": 3}, {"per_gpu": 3, "runs_on_gpu": 2}, {"per_gpu": "?"}]}
    (root / "softmax_listops_0" / "campaign.json").write_text(json.dumps(side))
    (root / "softmax_listops_1" / "campaign.json").write_text("{not json")
    _aggregate(runs)
    rows = (runs / "out" / "efficiency.md").read_text().splitlines()
    listops = next(r for r in rows if r.startswith("| listops | softmax |"))
    image = next(r for r in rows if r.startswith("| image | softmax |"))
    assert listops.split(" | ")[6] == "2, 3"
    assert image.split(" | ")[6] == "—"


def test_plot_of_a_task_without_completed_runs_is_removed(runs: Path) -> None:
    out = runs / "out"
    out.mkdir(parents=True, exist_ok=True)
    earlier = out / "pareto_pathx.png"
    earlier.write_bytes(b"an earlier plot")  # of runs that no longer enter the tables
    summary = _aggregate(runs)
    assert not earlier.exists()
    assert "pareto_pathx.png" not in {p.name for p in summary["files"]}
    assert (out / "pareto_listops.png").exists()


def _usable(root: Path) -> list:
    from experiments.results_load import find_metric_files, load_record, split_records

    records = [load_record(p) for p in find_metric_files([root / "outputs"])]
    return split_records(records)[0]


def test_pareto_points_by_throughput_and_by_memory(runs: Path) -> None:
    records = _usable(runs)
    speed = {p[0]: p for p in results.pareto_points("listops", records)}
    memory = {p[0]: p for p in results.pareto_points("listops", records, key="peak_memory_bytes")}
    # softmax listops: seeds 0 and 1 -> tokens/s 1000 and 2000, peak 1 and 2 MiB
    assert speed["softmax"][1] == pytest.approx(1500.0)
    assert memory["softmax"][1] == pytest.approx(1.5 * 2**20)
    assert memory["softmax"][2:] == speed["softmax"][2:] == pytest.approx((37.0, 1.4142136, 2))


def test_pareto_plot_draws_a_memory_panel(runs: Path, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    records = _usable(runs)
    seen = []
    real = plt.Figure.savefig

    def spy(fig, *args, **kwargs):
        seen.append([ax.get_xlabel() for ax in fig.axes])
        return real(fig, *args, **kwargs)

    plt.Figure.savefig = spy
    try:
        assert results.pareto_plot("listops", records, tmp_path / "p.png")
    finally:
        plt.Figure.savefig = real
    assert seen == [["train throughput (tokens/s)", "peak memory (GiB)"]]


def test_main_cli(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = results.main(["--runs", str(runs / "outputs"), "--out", str(runs / "cli")])
    assert rc == 0
    assert "wrote" in capsys.readouterr().out
    assert "python -m experiments.results --runs" in (runs / "cli" / "efficiency.md").read_text()


def test_written_tables_name_no_absolute_path(runs: Path) -> None:
    assert results.main(["--runs", str(runs / "outputs"), "--out", str(runs / "cli")]) == 0
    for table in (runs / "cli").glob("*.md"):
        text = table.read_text()
        assert str(runs) not in text, table.name
        # outside the repository and the working folder: the last two components
        assert f"--runs {runs.name}/outputs --out {runs.name}/cli" in text


def test_importing_results_leaves_the_data_modules_unloaded() -> None:
    """The task columns are read from the registry on first use, not at import."""
    code = (
        "import sys, experiments.results as r\n"
        "before = sorted(m for m in sys.modules if m.startswith(('experiments.data', 'torch')))\n"
        "print(before, r.TASKS5 == r.TASKS[:5], 'listops' in r.TASKS)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["[]", "True", "True"]


def test_a_preset_run_made_before_the_preset_changed_leaves_the_tables(tmp_path: Path) -> None:
    """A record says lra, but its preset now trains with another init: excluded, and the
    reason names the value that changed; a record matching the preset as it is stays in."""
    from experiments.protocol import preset_config

    root = tmp_path / "runs"
    for seed, init in ((0, "torch"), (1, None)):
        config = json.loads(json.dumps(preset_config("lra/softmax-listops")))
        config["seed"] = seed
        if init is not None:
            config["model"]["init_weights"] = init
        _write(root, f"s{seed}", _record("listops", "softmax", seed, 0.37, config=config))
    results.main(["--runs", str(root), "--out", str(tmp_path / "out")])
    md = (tmp_path / "out" / "lra_accuracy.md").read_text()
    table, excluded = md.split("## Incomplete, failed or excluded runs")
    assert "| ours | softmax | 37.00 (n=1) |" in table
    assert "earlier revision of experiment=lra/softmax-listops" in excluded
    now = preset_config("lra/softmax-listops")["model"]["init_weights"]
    assert f"model.init_weights 'torch' (preset: {now!r})" in excluded


def test_a_record_without_a_key_the_preset_now_sets_compares_that_keys_default() -> None:
    """A record written before a config key existed ran with the key's default: it stays a run
    of its preset where the preset leaves the key at that default, and is stale where the
    preset now sets it to something else."""
    from experiments.protocol import preset_base_config, preset_config, stale_reason

    def record_without(preset: str, key: str) -> dict:
        config = json.loads(json.dumps(preset_config(preset)))
        del config["model"][key]
        return {"protocol": "lra", "config": config}

    base = preset_base_config("lra/softmax-pathfinder")["model"]["head_init_weights"]
    assert base is None
    assert preset_config("lra/softmax-pathfinder")["model"]["head_init_weights"] == "xavier"
    stale = stale_reason(record_without("lra/softmax-pathfinder", "head_init_weights"))
    assert stale is not None and "model.head_init_weights None (preset: 'xavier')" in stale
    assert preset_config("lra/softmax-listops")["model"]["head_init_weights"] is None
    assert stale_reason(record_without("lra/softmax-listops", "head_init_weights")) is None
    # A key the preset sets away from its group's default (embedding std 1.0, not 0.02).
    assert preset_base_config("lra/softmax-listops")["model"]["embedding_init_std"] != 1.0
    stale = stale_reason(record_without("lra/softmax-listops", "embedding_init_std"))
    assert stale is not None and "model.embedding_init_std" in stale


def test_on_two_classes_the_other_constant_answer_is_chance_too(tmp_path: Path) -> None:
    """When the training majority is the test minority (49.36 %), a model answering the other
    class tests at 50.64 %: 50.87 % is within one point of that and counts as at chance on
    Pathfinder, while on ListOps (ten classes) only the recorded rate is the level."""
    root = tmp_path / "runs"
    _write(root, "pf", _record("pathfinder", "fnet", 0, 0.5087, chance_acc=0.49355))
    _write(root, "pf1", _record("pathfinder", "fnet", 1, 0.5170, chance_acc=0.49355))
    _write(root, "lo", _record("listops", "fnet", 0, 0.2010, chance_acc=0.1755))
    results.main(["--runs", str(root), "--out", str(tmp_path / "out")])
    md = (tmp_path / "out" / "lra_accuracy.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| ours | fnet |"))
    assert "(n=2, 1 at chance)" in row
    assert "20.10 (n=1) |" in row


def test_cells_count_the_seeds_that_tested_at_chance(tmp_path: Path) -> None:
    """A seed within one point of the majority-class rate is counted as at chance, kept in
    the mean; a record without chance_acc is not judged."""
    root = tmp_path / "runs"
    accs = {0: (0.4936, 0.5064), 1: (0.72, 0.5064), 2: (0.50, None)}
    for seed, (acc, chance) in accs.items():
        extra = {} if chance is None else {"chance_acc": chance}
        _write(root, f"pf{seed}", _record("pathfinder", "softmax", seed, acc, **extra))
    results.main(["--runs", str(root), "--out", str(tmp_path / "out")])
    md = (tmp_path / "out" / "lra_accuracy.md").read_text()
    assert "| ours | softmax | — | — | — | — | 57.12 ± 12.89 (n=3, 1 at chance) |" in md
