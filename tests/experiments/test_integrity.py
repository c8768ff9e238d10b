"""No command loses or corrupts a result; every bad input gets one sentence.

Grouped like the cases they cover: resume safety, run kinds and the tables, run endings
(Ctrl-C, failures, exit codes), bad input (one sentence, exit 2), files left behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments import results
from experiments import train as harness
from experiments.callbacks import StepProgressBar
from experiments.cli import precheck_overrides
from experiments.config import ConfigError, validate_experiment
from experiments.portable import portable_path, recorded_path
from experiments.protocol import classify, data_parallel_replicas
from experiments.resume import ResumeError, find_resume_dir, merge_csv_history
from experiments.run_record import RecordExistsError, RunRecord
from tests.run_endings import CtrlCAt

ROOT = Path(__file__).resolve().parents[2]
H100_SOFTMAX = (
    ROOT
    / "results/archive/2026-11-25-old-presets/lra-listops-softmax/2026-11-25_12-37-49_85fae8"
    / "metrics.json"
)


def _compose(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _debug(out: Path, data: Path, *extra: str) -> dict:
    return _compose(
        "debug=default",
        f"paths.output_dir={out}",
        f"paths.data_dir={data}",
        "trainer.enable_progress_bar=false",
        *extra,
    )


def _fake_run(
    root: Path, name: str, status: str, config: dict, mtime: int, exp: str = "exp"
) -> Path:
    run_dir = root / exp / name
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    os.utime(run_dir / "checkpoints" / "last.ckpt", (mtime, mtime))
    (run_dir / "metrics.json").write_text(json.dumps({"status": status, "config": config}))
    return run_dir


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------
# 1, 5: resume takes only resumable runs of the same config; completed records are immutable
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("finished", ["completed", "failed"])
def test_auto_never_picks_a_finished_run(tmp_path: Path, finished: str) -> None:
    config = {"model": {"hidden_dim": 16}}
    older = _fake_run(tmp_path, "a", "interrupted", config, 1000)
    _fake_run(tmp_path, "b", finished, config, 2000)  # newer, but finished
    assert find_resume_dir("auto", tmp_path, "exp", config) == older


def test_auto_with_nothing_resumable_starts_fresh(tmp_path: Path) -> None:
    _fake_run(tmp_path, "a", "completed", {}, 1000)
    _fake_run(tmp_path, "b", "failed", {}, 2000)  # e.g. a NaN failure
    assert find_resume_dir("auto", tmp_path, "exp", {}) is None


def test_a_config_change_is_refused_in_one_sentence(tmp_path: Path) -> None:
    _fake_run(tmp_path, "a", "incomplete", {"model": {"hidden_dim": 16}, "resume": None}, 1000)
    with pytest.raises(ResumeError, match=r"different config \(model.hidden_dim differ\)"):
        find_resume_dir("auto", tmp_path, "exp", {"model": {"hidden_dim": 32}, "resume": "auto"})
    # resume itself and trainer.max_time may differ between segments
    same = {"model": {"hidden_dim": 16}, "resume": "auto", "trainer": {"max_time": "1"}}
    assert find_resume_dir("auto", tmp_path, "exp", same) is not None


def test_loader_workers_and_compile_may_change_between_segments(tmp_path: Path) -> None:
    old = {"model": {"hidden_dim": 16}, "data": {"num_workers": 1, "batch_size": 8}}
    _fake_run(tmp_path, "a", "incomplete", {**old, "compile": "auto"}, 1000)
    faster = {"model": {"hidden_dim": 16}, "data": {"num_workers": 15, "batch_size": 8}}
    assert find_resume_dir("auto", tmp_path, "exp", {**faster, "compile": "false"}) is not None
    rebuilt = {**faster, "model": {"hidden_dim": 16, "recompute_mixing": True}}
    assert find_resume_dir("auto", tmp_path, "exp", rebuilt) is not None
    larger = {"model": {"hidden_dim": 16}, "data": {"num_workers": 1, "batch_size": 16}}
    with pytest.raises(ResumeError, match=r"\(data.batch_size differ\)"):
        find_resume_dir("auto", tmp_path, "exp", {**larger, "compile": "auto"})


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_an_explicit_finished_run_is_refused(tmp_path: Path, status: str) -> None:
    run = _fake_run(tmp_path, "a", status, {}, 1000)
    with pytest.raises(ResumeError, match=f"is a {status} run and is not resumable"):
        find_resume_dir(str(run), tmp_path, "exp", {})
    with pytest.raises(ResumeError, match="has no checkpoints/last.ckpt"):
        find_resume_dir(str(tmp_path), tmp_path, "exp", {})


def test_a_completed_record_is_never_rewritten(tmp_path: Path) -> None:
    RunRecord(tmp_path, task="listops").finish("completed")
    before = _digest(tmp_path / "metrics.json")
    with pytest.raises(RecordExistsError, match="never rewritten"):
        RunRecord(tmp_path, task="listops")
    assert _digest(tmp_path / "metrics.json") == before


def test_resume_auto_after_a_completed_run_with_a_new_config_leaves_it_intact(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = harness.run(_debug(tmp_path / "runs", data, "attention=kernel"))
    record = recorded_path(first["run_dir"], [tmp_path / "runs"]) / "metrics.json"
    before = _digest(record)
    second = harness.run(
        _debug(tmp_path / "runs", data, "attention=kernel", "model.hidden_dim=32", "resume=auto")
    )
    assert second["status"] == "completed" and second["run_dir"] != first["run_dir"]
    assert _digest(record) == before
    assert stat.S_IMODE(record.stat().st_mode) == 0o644  # readable by everyone


def test_a_resumed_segment_keeps_its_hydra_config_under_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "runs"
    raw = _debug(out, tmp_path / "data", "resume=auto")
    earlier = _fake_run(out, "2026-01-01_00-00-00_aaaaaa", "interrupted", raw, 1000, raw["name"])
    segment = out / raw["name"] / "2026-01-02_00-00-00_bbbbbb"  # this command's Hydra folder
    (segment / ".hydra").mkdir(parents=True)
    (segment / ".hydra" / "config.yaml").write_text("resume: auto\n")
    (segment / "train.log").write_text("")
    monkeypatch.setattr(harness, "_hydra_output_dir", lambda: segment)
    run_dir, ckpt = harness._select_run_dir(validate_experiment(raw), raw)
    assert run_dir == earlier and ckpt == str(earlier / "checkpoints" / "last.ckpt")
    assert sorted(p.name for p in (out / raw["name"]).iterdir()) == [earlier.name]  # no orphan
    kept = earlier / "segments" / segment.name
    assert (kept / ".hydra" / "config.yaml").read_text() == "resume: auto\n"
    assert (kept / "train.log").is_file()


# ------------------------------------------------------------------------------------------
# 2: every record has a protocol; the tables take protocol runs only
# ------------------------------------------------------------------------------------------


def test_protocol_is_derived_from_the_config() -> None:
    assert classify(_compose("debug=default"), debug_choice="default")[0] == "debug"
    assert classify(_compose())[0] == "custom"  # the default CPU job
    preset = _compose("experiment=lra/softmax-listops")
    assert classify(preset)[0] == "lra"
    short = _compose("experiment=lra/softmax-listops", "trainer.max_steps=100")
    kind, why = classify(short)
    assert kind == "custom" and "trainer.max_steps" in why
    model = _compose("experiment=lra/softmax-listops", "model.num_layers=1")
    kind, why = classify(model)
    assert kind == "custom" and "model.num_layers" in why
    where = _compose("experiment=lra/softmax-listops", "trainer=gpu", "seed=3", "logger=csv")
    assert classify(where)[0] == "lra"  # device, seed and logging do not change the protocol
    for memory_plan in ("model.recompute_mixing=true", "model.gradient_checkpointing=true"):
        rebuilt = _compose("experiment=lra/lst-dct-pathfinder", memory_plan)
        assert classify(rebuilt)[0] == "lra"  # how the backward gets its tensors, not its maths
    ddp = _compose("experiment=lra/softmax-listops", "trainer=ddp", "trainer.devices=2")
    kind, why = classify(ddp)  # two ranks of the preset's 32 are a global batch of 64
    assert kind == "custom" and "effective batch 64 (preset: 32)" in why
    halved = _compose("experiment=lra/softmax-listops", "trainer=ddp", "trainer.devices=2")
    halved["data"]["batch_size"] = 16
    assert classify(halved)[0] == "lra"
    shorter = _compose("experiment=lra/fnet-listops", "task.pad_to=longest")
    kind, why = classify(shorter)  # FNet mixes over the padded length
    assert kind == "custom" and "task.pad_to" in why
    unknown = _compose("experiment=lra/softmax-listops", "trainer.devices=auto")
    assert classify(unknown)[0] == "custom"  # the device count depends on the machine
    old = json.loads(H100_SOFTMAX.read_text())  # trained under the earlier presets
    kind, why = classify(old["config"])
    assert "protocol" not in old and kind == "custom"


def _rec(root: Path, name: str, protocol: str | None, acc: float, finished: str) -> Path:
    data = {
        "status": "completed",
        "task": "listops",
        "variant": "softmax",
        "seed": 0,
        "test_acc": acc,
        "finished_at": finished,
    }
    if protocol:
        data["protocol"] = protocol
    path = root / name / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_a_newer_run_of_another_kind_never_replaces_a_protocol_run(tmp_path: Path) -> None:
    _rec(tmp_path, "lra", "lra", 0.372, "2026-01-01")
    _rec(tmp_path, "cpu", "custom", 0.17, "2026-02-01")
    _rec(tmp_path, "dbg", "debug", 1.0, "2026-03-01")
    summary = results.aggregate([tmp_path], tmp_path / "out", "test")
    ours = [r for r in summary["rows"] if r["kind"] == "ours"]
    assert [(r["variant"], round(r["listops_mean"], 1)) for r in ours] == [("softmax", 37.2)]
    text = (tmp_path / "out" / "lra_accuracy.md").read_text()
    assert "protocol=custom" in text and "protocol=debug" in text  # listed with the reason
    both = results.aggregate([tmp_path], tmp_path / "out2", "test", ("lra", "custom"))
    names = sorted(r["variant"] for r in both["rows"] if r["kind"] == "ours")
    assert names == ["softmax", "softmax [custom]"]


def test_archived_records_of_earlier_presets_stay_out_of_the_protocol_table(
    tmp_path: Path,
) -> None:
    summary = results.aggregate([H100_SOFTMAX.parents[2]], tmp_path, "test")
    rows = {r["variant"]: r for r in summary["rows"] if r["kind"] == "ours"}
    assert "softmax" not in rows


def test_a_missing_runs_folder_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert results.main(["--runs", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a folder" in err


# ------------------------------------------------------------------------------------------
# 6, 7, 8, 11: run endings: Ctrl-C, empty validation, max_steps=0, csv history, exit codes
# ------------------------------------------------------------------------------------------


def test_ctrl_c_records_interrupted_and_resume_sums_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, out = tmp_path / "data", tmp_path / "runs"
    extra = ("trainer.max_steps=6", "callbacks.checkpoint_every_n_steps=100")
    make = harness._make_callbacks
    monkeypatch.setattr(harness, "_make_callbacks", lambda e, d: {**make(e, d), "c": CtrlCAt(3)})
    with pytest.raises(harness.RunInterruptedError, match=r"interrupted at step 3; continue"):
        harness.run(_debug(out, data, *extra))
    monkeypatch.setattr(harness, "_make_callbacks", make)
    run_dir = next(out.glob("*/*/metrics.json")).parent
    first = json.loads((run_dir / "metrics.json").read_text())
    assert first["status"] == "interrupted" and first["steps"] == 3
    assert f"resume={portable_path(run_dir)}" in first["failure_reason"]
    rows_before = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[1:]
    resumed = harness.run(_debug(out, data, *extra, "resume=auto"))
    assert recorded_path(resumed["run_dir"], [out]) == run_dir
    assert resumed["status"] == "completed"
    assert resumed["steps"] == 6 and resumed["wall_time_s"] > first["wall_time_s"]
    assert resumed["started_at"] == first["started_at"]
    rows_after = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    steps = [line.split(",") for line in rows_after[1:]]
    assert len(rows_after) - 1 > len(rows_before)  # the first segment's rows are kept
    assert any(r for r in steps) and len(steps) >= len(rows_before)


class _Boom(pl.Callback):
    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == 2:
            raise RuntimeError("boom in a callback")


def test_an_error_during_fit_is_recorded_failed_not_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, out = tmp_path / "data", tmp_path / "runs"
    make = harness._make_callbacks
    monkeypatch.setattr(harness, "_make_callbacks", lambda e, d: {**make(e, d), "b": _Boom()})
    with pytest.raises(RuntimeError, match="boom in a callback"):
        harness.run(_debug(out, data, "trainer.max_steps=6"))
    record = json.loads(next(out.glob("*/*/metrics.json")).read_text())
    assert record["status"] == "failed"
    assert record["failure_reason"] == "RuntimeError: boom in a callback"


def test_gradient_clipping_works_with_a_fused_optimizer_under_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from experiments import module as lra_module

    made: list[torch.optim.Optimizer] = []

    def fused(groups: list, cfg: object) -> torch.optim.Optimizer:
        made.append(torch.optim.AdamW(groups, lr=1e-3, fused=True))
        return made[-1]

    monkeypatch.setattr(lra_module, "make_optimizer", fused)
    data, out = tmp_path / "data", tmp_path / "runs"
    extra = ("trainer.max_steps=3", "trainer.precision=bf16-mixed", "trainer.gradient_clip_val=0.5")
    record = harness.run(_debug(out, data, *extra))
    assert made and made[0].defaults["fused"]
    assert record["status"] == "completed" and record["steps"] == 3


def test_csv_history_is_merged_once(tmp_path: Path) -> None:
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "metrics.csv").write_text("step,train/loss\n5,0.5\n")
    merge_csv_history(tmp_path, [{"step": "1", "train/loss": "0.9"}])
    merge_csv_history(tmp_path, [{"step": "1", "train/loss": "0.9"}])
    assert (csv_dir / "metrics.csv").read_text().splitlines() == [
        "step,train/loss",
        "1,0.9",
        "5,0.5",
    ]


def test_an_empty_validation_split_is_refused(tmp_path: Path) -> None:
    from experiments.data.errors import DataError

    data, out = tmp_path / "data", tmp_path / "runs"
    harness.run(_debug(out, data, "trainer.max_steps=2"))
    val = next(data.rglob("basic_val.tsv"))
    val.write_text("Source\tTarget\r\n")
    (val.parent / "manifest.json").unlink()  # an official-format folder: no manifest to check
    with pytest.raises(DataError, match=r"the val split of task listops .* has no rows"):
        harness.run(_debug(out, data, "trainer.max_steps=2", "task.cache=false"))


def test_max_steps_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"trainer.max_steps = 0 is invalid"):
        validate_experiment(_compose("trainer.max_steps=0"))


def test_step_based_runs_show_steps_not_epoch_minus_two() -> None:
    trainer = pl.Trainer(max_steps=7, logger=False, enable_checkpointing=False)
    bar = StepProgressBar()
    bar._trainer = trainer  # noqa: SLF001 - the bar reads its trainer
    bar.on_train_start(trainer, None)  # type: ignore[arg-type]
    assert bar.train_progress_bar.total == 7
    assert "Epoch" not in bar.train_progress_bar.desc
    bar.train_progress_bar.close()


def test_tensorboard_logger_wins_over_the_debug_default() -> None:
    assert _compose("debug=default", "logger=tensorboard")["logger"]["name"] == "tensorboard"
    assert _compose("debug=default")["logger"]["name"] == "csv"


# ------------------------------------------------------------------------------------------
# 9: bad input: one sentence naming the key and the fix (checked before any folder exists)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["seed=-1"], "seed = -1 is invalid"),
        (["task.max_length=0"], "task.max_length"),
        (["model.max_sequence_length=50"], "model.max_sequence_length = 50 is shorter"),
        (["trainer.max_steps=0"], "trainer.max_steps = 0 is invalid"),
        (["paths.data_dir=/tmp/a", "b"], "quote a value with spaces"),
        (["-m", "optimizer.lr=0.1,-1"], "optimizer.lr = -1 is invalid"),
        (["-m", "attention=softmax,perfomer"], "attention = 'perfomer' is invalid"),
    ],
)
def test_bad_overrides_get_one_sentence(overrides: list[str], expected: str) -> None:
    problem = precheck_overrides(overrides)
    assert problem is not None and expected in problem and "\n" not in problem


def test_a_rejected_command_exits_2_and_leaves_no_folder(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "-m", "seed=0,-1", f"paths.root_dir={tmp_path}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "seed = -1" in out.stderr
    assert not (tmp_path / "runs").exists()


def test_an_unwritable_folder_is_one_sentence() -> None:
    err = PermissionError(13, "Permission denied", "/data/.cache")
    text = harness._one_sentence(err)
    assert "/data/.cache" in text and "paths.data_dir" in text and "\n" not in text


def test_a_failed_run_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = {"status": "failed", "failure_reason": "train/loss became nan at step 2"}
    monkeypatch.setattr(harness, "run", lambda cfg: failed)
    monkeypatch.setattr(harness, "_is_multirun", lambda: False)
    with pytest.raises(SystemExit) as exit_:
        harness.main(OmegaConf.create({}))
    assert exit_.value.code == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--device", "cuda"], "--device cuda"),
        (["--dtypes", "fp8"], "--dtypes got unknown value(s) ['fp8']"),
        (["--mixers", "perfomer"], "--mixers got unknown value(s) ['perfomer']"),
    ],
)
def test_bench_bad_options_are_one_sentence(argv: list[str], expected: str) -> None:
    import torch

    from experiments import bench

    if argv[1] == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    with pytest.raises(bench.BenchUsageError) as err:
        bench.main([*argv, "--quick", "--out", "/nonexistent"])
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_data_cli_rejects_a_negative_image_count(capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.data.__main__ import main

    assert main(["pathfinder", "--num-images", "-5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "--num-images -5 is not allowed: give a positive number."


def _corrupt_cases(tmp_path: Path) -> list[tuple[object, str]]:
    from experiments.data.image import read_cifar_pickle
    from experiments.data.listops import read_listops_tsv
    from experiments.data.retrieval import read_aan_tsv

    listops = tmp_path / "basic_train.tsv"
    listops.write_text("Source\tTarget\r\n( [MAX 2 3 ] )\t12\r\n")
    aan = tmp_path / "new_aan_pairs.train.tsv"
    aan.write_text("1\ta\tb\tonly four fields\n")
    cifar = tmp_path / "data_batch_1"
    cifar.write_bytes(b"\x00garbage\xff" * 10)
    return [
        (lambda: read_listops_tsv(listops), "target '12' is not a digit"),
        (lambda: read_aan_tsv(aan, 100, 100), "expected 5 tab-separated fields"),
        (lambda: read_cifar_pickle(cifar), "not a CIFAR-10 python batch"),
    ]


def test_corrupt_rows_are_one_sentence_user_errors(tmp_path: Path) -> None:
    for read, expected in _corrupt_cases(tmp_path):
        with pytest.raises(harness.USER_ERRORS) as err:
            read()  # type: ignore[operator]
        assert expected in str(err.value) and "\n" not in str(err.value)


def _write_aan(root: Path, rows: dict[str, int]) -> Path:
    """``new_aan_pairs.{train,eval,test}.tsv`` with ``rows[split]`` rows each (no header)."""
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "eval", "test"):
        lines = [f"{i % 2}.0\tp{i}\tq{i}\tpaper {i} text\tcited {i}\n" for i in range(rows[split])]
        (root / f"new_aan_pairs.{split}.tsv").write_text("".join(lines))
    return root


def _main(cfg: dict, capsys: pytest.CaptureFixture[str]) -> tuple[object, str]:
    """Exit code and stderr of the harness entry point on ``cfg``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        harness.main(OmegaConf.create(cfg))
    return exit_.value.code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _hydra_folder(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """Pretend Hydra made ``folder`` (``.hydra/`` and ``train.log``) for this command."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("{}\n")
    (folder / "train.log").write_text("")
    monkeypatch.setattr(harness, "_hydra_output_dir", lambda: folder)
    return folder


def test_empty_aclimdb_folders_are_one_sentence_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from experiments.data import build_datamodule
    from experiments.data.errors import DataError

    data = tmp_path / "data"
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            (data / "imdb" / "aclImdb" / split / label).mkdir(parents=True)
    dm = build_datamodule({"name": "text"}, data_dir=data, batch_size=2)
    with pytest.raises(DataError) as err:
        dm.setup()
    text = str(err.value)
    assert str(data / "imdb" / "aclImdb" / "train") in text and "aclImdb_v1.tar.gz" in text
    assert "\n" not in text
    job = _hydra_folder(monkeypatch, tmp_path / "runs" / "text-softmax" / "job")
    code, stderr = _main(_debug(tmp_path / "runs", data, "task=text"), capsys)
    line = _one_line(stderr)
    assert code == 2 and line.startswith("error: ") and str(data / "imdb" / "aclImdb") in line
    assert not job.exists()  # the rejected command leaves no folder with only .hydra/


def test_an_empty_aan_file_is_one_sentence_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    root = _write_aan(data / "tsv_data", {"train": 0, "eval": 3, "test": 3})
    code, stderr = _main(_debug(tmp_path / "runs", data, "task=retrieval"), capsys)
    line = _one_line(stderr)
    assert code == 2 and f"the train split of task retrieval under {root} has no rows" in line
    assert not (tmp_path / "runs").exists()


def test_imdb_parquet_without_pyarrow_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments.data import build_datamodule
    from experiments.data.errors import DataError

    folder = tmp_path / "imdb" / "plain_text"
    folder.mkdir(parents=True)
    files = [folder / f"{s}-00000-of-00001.parquet" for s in ("train", "test")]
    try:
        import pandas as pd
        import pyarrow  # noqa: F401

        for path in files:
            pd.DataFrame({"text": ["meh", "wow"], "label": [0, 1]}).to_parquet(path)
    except ImportError:  # never parsed without an engine: the magic bytes suffice
        for path in files:
            path.write_bytes(b"PAR1" + b"\0" * 8 + b"PAR1")
    for engine in ("pyarrow", "fastparquet"):  # no parquet engine importable
        monkeypatch.setitem(sys.modules, engine, None)
    monkeypatch.setattr("experiments.data.text.datasets_importable", lambda: False)
    dm = build_datamodule({"name": "text", "cache": False}, data_dir=tmp_path, batch_size=2)
    with pytest.raises(DataError) as err:
        dm.setup()
    text = str(err.value)
    assert "pip install pyarrow" in text and str(files[0]) in text and "\n" not in text


def _deny_mkdir_under(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """``os.mkdir`` fails under ``root`` as on a read-only folder (tests run as root)."""
    real = os.mkdir
    denied = root.resolve()

    def mkdir(path: str | os.PathLike[str], mode: int = 0o777, **kwargs: object) -> None:
        if Path(path).resolve().is_relative_to(denied):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        real(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.mark.parametrize(
    ("denied", "key"), [("data", "paths.data_dir"), ("runs", "paths.output_dir")]
)
def test_a_read_only_folder_is_one_sentence_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    denied: str,
    key: str,
) -> None:
    data, out = tmp_path / "data", tmp_path / "runs"
    _write_aan(data / "tsv_data", {"train": 4, "eval": 2, "test": 2})
    _deny_mkdir_under(monkeypatch, tmp_path / denied)
    code, stderr = _main(_debug(out, data, "task=retrieval"), capsys)
    line = _one_line(stderr)
    blocked = data / ".cache" if denied == "data" else out / "retrieval-softmax"
    assert code == 2 and f"cannot use {blocked}" in line and f"point {key} elsewhere" in line
    assert not out.exists()


SITECUSTOMIZE = """
import errno, os
from pathlib import Path

_denied = Path(os.environ["DENY_MKDIR_UNDER"]).resolve()
_mkdir = os.mkdir


def _deny(path, mode=0o777, **kwargs):
    if Path(path).resolve().is_relative_to(_denied):
        raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
    return _mkdir(path, mode, **kwargs)


os.mkdir = _deny
"""


def test_train_py_refuses_a_read_only_output_folder_before_hydra(tmp_path: Path) -> None:
    from experiments.cli import unwritable_folder

    (tmp_path / "sc").mkdir()
    (tmp_path / "sc" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    runs = tmp_path / "runs"
    runs.mkdir()  # exists, read-only: Hydra would fail making its run folder in it
    env = {
        **os.environ,
        "DENY_MKDIR_UNDER": str(runs),
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "sc"), str(ROOT)]),
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "debug=default", f"paths.root_dir={tmp_path}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = _one_line(out.stderr)
    assert out.returncode == 2 and f"cannot use {runs} (paths.output_dir)" in line
    assert list(runs.iterdir()) == [] and not (tmp_path / "data").exists()
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    problem = unwritable_folder(str(a_file / "runs"), "paths.output_dir")
    assert problem is not None and str(a_file) in problem and "\n" not in problem
    assert unwritable_folder(str(tmp_path / "new" / "runs"), "paths.output_dir") is None
    assert not (tmp_path / "new").exists()


def test_a_refused_resume_exits_2_leaving_no_folder_and_the_run_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "runs"
    earlier_cfg = _debug(out, tmp_path / "data")
    name = earlier_cfg["name"]
    earlier = _fake_run(out, "2026-01-01_00-00-00_aaaaaa", "incomplete", earlier_cfg, 1000, name)
    before = _digest(earlier / "metrics.json")
    job = _hydra_folder(monkeypatch, out / name / "2026-01-02_00-00-00_bbbbbb")
    code, stderr = _main(
        _debug(out, tmp_path / "data", "model.hidden_dim=32", "resume=auto"), capsys
    )
    line = _one_line(stderr)
    assert code == 2 and "model.hidden_dim" in line and str(earlier) in line
    assert not job.exists() and sorted(p.name for p in (out / name).iterdir()) == [earlier.name]
    assert _digest(earlier / "metrics.json") == before


def test_max_time_counts_the_start_up_of_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow start (data, model, restore) uses up ``trainer.max_time`` like training does."""
    import time

    data, out = tmp_path / "data", tmp_path / "runs"
    build = harness.build_datamodule

    def slow_build(exp):  # start-up that outlasts the whole max_time
        time.sleep(2.5)
        return build(exp)

    monkeypatch.setattr(harness, "build_datamodule", slow_build)
    extra = ("trainer.max_steps=50", "trainer.max_time=00:00:00:02")
    record = harness.run(_debug(out, data, *extra))
    assert record["status"] == "incomplete"
    assert record["steps"] == 1  # the timer is checked after the first step


def test_segment_timer_starts_at_the_given_time() -> None:
    import time

    from experiments.callbacks import SegmentTimer

    timer = SegmentTimer(duration="00:00:00:30", interval="step", started=time.monotonic() - 40)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    timer.on_train_start(trainer, None)  # type: ignore[arg-type]
    assert timer.time_elapsed("train") >= 40
    assert timer.time_remaining("train") <= 0


@pytest.mark.parametrize(
    ("devices", "nodes", "replicas"),
    [
        (1, 1, 1),
        (2, 1, 2),
        ("2", 1, 2),
        ([0, 1, 2], 1, 3),
        ("0,1", 1, 2),
        ("1,", 1, 1),
        (2, 2, 4),
        ("auto", 1, None),
        (-1, 1, None),
        (None, None, 1),
    ],
)
def test_data_parallel_replicas_reads_the_device_count_as_lightning_does(
    devices: object, nodes: object, replicas: int | None
) -> None:
    trainer = {} if devices is None else {"devices": devices, "num_nodes": nodes}
    assert data_parallel_replicas({"trainer": trainer}) == replicas
