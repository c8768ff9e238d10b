"""experiments.step_profile: a torch.profiler record of a window of the run's own steps."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.config import ConfigError, validate_experiment
from experiments.step_profile import REPORT_NAME, SYNC_WARNING, SyncRecorder, parse_window

ROOT = Path(__file__).resolve().parents[2]


def test_window_is_start_and_steps() -> None:
    assert parse_window("1500:20") == (1500, 20)
    assert parse_window(" 0 : 1 ") == (0, 1)
    for bad in ("20", "5:0", "a:b", "-1:3"):
        with pytest.raises(ValueError, match="is not START:STEPS"):
            parse_window(bad)


def test_a_bad_window_is_one_config_sentence() -> None:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        raw = OmegaConf.to_container(
            compose("config", overrides=["callbacks.step_profile='12'"]), resolve=True
        )
    with pytest.raises(ConfigError) as info:
        validate_experiment(raw)
    assert "callbacks.step_profile" in str(info.value) and "START:STEPS" in str(info.value)
    assert "\n" not in str(info.value)


def _train(tmp_path: Path, window: str) -> Path:
    """A four-step CPU debug run with ``callbacks.step_profile=window``; its run folder."""
    command = [
        sys.executable, "train.py", "debug=default", "task=listops",
        f"paths.output_dir={tmp_path}/runs", f"paths.data_dir={tmp_path}/data",
        f"hydra.run.dir={tmp_path}/run", "trainer.enable_progress_bar=false",
        f"callbacks.step_profile={window}",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return tmp_path / "run"


def test_a_run_writes_the_profile_of_its_window(tmp_path: Path) -> None:
    """Steps 1-2 of a four-step CPU run: the report names them and has the host table."""
    text = (_train(tmp_path, "1:2") / REPORT_NAME).read_text()
    assert text.startswith("Training steps 1-2 (2 steps) profiled with torch.profiler on CPU")
    assert "wall: " in text and "ms/step" in text
    assert "## By self host time" in text and "aten::" in text
    assert "device busy" not in text  # no device on a CPU run
    assert "1 validation(s) ran inside the window" in text  # after step 2 (val every 2)


def test_a_window_past_the_end_writes_nothing(tmp_path: Path) -> None:
    assert not (_train(tmp_path, "100:2") / REPORT_NAME).exists()


def _synchronising_call() -> None:
    warnings.warn(f"the test {SYNC_WARNING} here", UserWarning, stacklevel=1)


def test_synchronisations_are_counted_by_the_code_that_asked() -> None:
    """Sync warnings are counted by their origin; other warnings pass through unchanged."""
    with warnings.catch_warnings(record=True) as passed:
        warnings.simplefilter("always")
        with SyncRecorder(cuda=False) as recorder:
            for _ in range(3):
                _synchronising_call()
            warnings.warn("something else", UserWarning, stacklevel=1)
        _synchronising_call()  # after the window: not counted
    [(where, count)] = recorder.origins.items()
    assert count == 3
    assert where.startswith("tests/experiments/test_step_profile.py:")
    assert "(_synchronising_call)" in where and "<- " in where
    assert [str(w.message) for w in passed] == [
        "something else",
        f"the test {SYNC_WARNING} here",
    ]
