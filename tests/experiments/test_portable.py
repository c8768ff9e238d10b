"""Run records name folders relative to the repository, never the machine's absolute paths."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from experiments.portable import (
    REPO_ROOT,
    cwd_relative,
    portable_command,
    portable_config,
    portable_path,
    portable_text,
    recorded_path,
)
from experiments.resume import comparable, config_differences
from experiments.run_record import RunRecord


def test_paths_inside_the_repository_become_repository_relative() -> None:
    assert portable_path(REPO_ROOT / "runs" / "a" / "b") == "runs/a/b"
    assert portable_path(REPO_ROOT) == "."
    assert portable_path("./data") == "data"  # relative paths stay, normalised
    assert portable_path("runs/x/../y") == "runs/y"


def test_paths_elsewhere_become_relative_to_a_root_or_their_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "listops-softmax" / "2026_abc"
    assert portable_path(run, [tmp_path / "runs"]) == "listops-softmax/2026_abc"
    assert portable_path("/nowhere/else/runs/name/run") == "name/run"
    assert not portable_path(run).startswith("/")


def test_recorded_paths_are_found_again_and_old_absolute_ones_still_read(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "n" / "r"
    run.mkdir(parents=True)
    assert recorded_path(portable_path(run, [tmp_path / "runs"]), [tmp_path / "runs"]) == run
    assert recorded_path(str(run)) == run  # an older record with an absolute path
    assert recorded_path("runs/n/r") == REPO_ROOT / "runs" / "n" / "r"


def test_command_and_config_lose_absolute_paths(tmp_path: Path) -> None:
    argv = [str(REPO_ROOT / "train.py"), f"paths.data_dir={REPO_ROOT}/data", "+x=/a/b/c", "seed=1"]
    assert portable_command(argv) == "python train.py paths.data_dir=data +x=b/c seed=1"
    config = {"seed": 1, "paths": {"data_dir": str(REPO_ROOT / "data"), "run_dir": None}}
    assert portable_config(config) == {"seed": 1, "paths": {"data_dir": "data", "run_dir": None}}
    assert config["paths"]["data_dir"] == str(REPO_ROOT / "data")  # the input is not changed


def test_text_of_another_machine_is_rewritten_against_its_root() -> None:
    text = "cwd: /m/repo\nout: /m/repo/runs/a\nother: /m/repository/x\n"
    assert portable_text(text, ["/m/repo"]) == "cwd: .\nout: runs/a\nother: /m/repository/x\n"


def test_cwd_relative_keeps_outside_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cwd_relative(tmp_path / "runs" / "best.ckpt") == "runs/best.ckpt"
    assert cwd_relative("/elsewhere/best.ckpt") == "/elsewhere/best.ckpt"


def test_a_run_record_never_holds_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = REPO_ROOT / "runs" / "portable-test" / "r0"
    monkeypatch.setattr(sys, "argv", [str(REPO_ROOT / "train.py"), f"paths.output_dir={tmp_path}"])
    record = RunRecord(tmp_path / "name" / "run")
    assert record.data["run_dir"] == "name/run"
    assert record.data["command"] == "python train.py paths.output_dir=" + portable_path(tmp_path)
    record.write()
    text = (tmp_path / "name" / "run" / "metrics.json").read_text()
    assert str(tmp_path) not in text and str(REPO_ROOT) not in text
    assert portable_path(run_dir) == "runs/portable-test/r0"


def test_resume_accepts_an_old_record_with_absolute_paths() -> None:
    old = {"seed": 0, "paths": {"data_dir": str(REPO_ROOT / "data"), "output_dir": "runs"}}
    new = {"seed": 0, "paths": {"data_dir": "./data", "output_dir": str(REPO_ROOT / "runs")}}
    assert config_differences(comparable(old), comparable(new)) == []
    moved = {"seed": 0, "paths": {"data_dir": "other", "output_dir": "runs"}}
    assert config_differences(comparable(old), comparable(moved)) == ["paths.data_dir"]
    assert json.dumps(comparable(old)).count(str(REPO_ROOT)) == 0


def test_hydra_files_of_a_run_lose_their_absolute_folders(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from experiments import train as harness

    runs = tmp_path / "runs"
    run_dir = runs / "listops-softmax" / "r0"
    for hydra in (run_dir / ".hydra", run_dir / "segments" / "s1" / ".hydra"):
        hydra.mkdir(parents=True)
        (hydra / "hydra.yaml").write_text(
            f"runtime:\n  cwd: {REPO_ROOT}\n  output_dir: {run_dir}\n"
            f"  config_sources:\n  - path: {REPO_ROOT}/conf\n"
        )
    exp = SimpleNamespace(paths=SimpleNamespace(output_dir=str(runs)))
    harness._make_hydra_files_portable(exp, run_dir)  # type: ignore[arg-type]
    for path in run_dir.glob("**/.hydra/hydra.yaml"):
        text = path.read_text()
        assert text == (
            "runtime:\n  cwd: .\n  output_dir: listops-softmax/r0\n"
            "  config_sources:\n  - path: conf\n"
        )


def test_text_under_nested_roots_is_relative_to_the_outer_one() -> None:
    text = "out: /m/repo/runs/a/b\n"
    assert portable_text(text, ["/m/repo/runs", "/m/repo"]) == "out: runs/a/b\n"
    assert portable_path("/m/repo/runs/a/b", ["/m/repo", "/m/repo/runs"]) == "runs/a/b"


def test_install_locations_in_logs_are_written_without_the_machine_folders() -> None:
    text = (
        "# /opt/torch/.venv/bin/python3 train.py seed=0\n"
        "/opt/torch/.venv/lib/python3.12/site-packages/lightning/x.py:3: warning\n"
        "(Triggered internally at /pytorch/torch/csrc/autograd/input_buffer.cpp:240.)\n"
        "/m/repo/runs/a kept relative\n"
    )
    assert portable_text(text, ["/m/repo"]) == (
        "# python3 train.py seed=0\n"
        "<site-packages>/lightning/x.py:3: warning\n"
        "(Triggered internally at <torch-source>/torch/csrc/autograd/input_buffer.cpp:240.)\n"
        "runs/a kept relative\n"
    )


def test_rewritten_logs_keep_their_carriage_returns(tmp_path) -> None:
    from experiments.portable import make_files_portable

    log = tmp_path / "console.log"
    log.write_bytes(b"bar 0%\rbar 100%\n/m/repo/runs/a\r\n")
    make_files_portable([log], ["/m/repo"])
    assert log.read_bytes() == b"bar 0%\rbar 100%\nruns/a\r\n"
