"""scripts/campaign_resume.py: unfinished runs packed with their checkpoints and restored."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import campaign  # noqa: E402
import campaign_pack  # noqa: E402
import campaign_resume  # noqa: E402

from experiments import train as harness  # noqa: E402
from experiments.resume import RESUMABLE  # noqa: E402
from tests.run_endings import CtrlCAt  # noqa: E402

NAME = "lra-listops-softmax"  # conf/experiment/lra/softmax-listops.yaml
MAX_STEPS = 5000  # its trainer.max_steps


def plan_file(tmp_path: Path, variants: tuple[str, ...] = ("softmax", "performer")) -> Path:
    """A ListOps-only plan writing below ``tmp_path``."""
    plan = {
        "name": "t",
        "output_dir": str(tmp_path / "runs"),
        "results_dir": str(tmp_path / "results"),
        "tasks": {"listops": {"seeds": 1, "per_gpu": 1, "ms_per_step": 60}},
        "variants": [{"name": v} for v in variants],
        "priority": [{"task": "listops", "seeds": [0]}],
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def partial_run(
    out: Path,
    name: str = NAME,
    run: str = "s0_a",
    *,
    step: int = 100,
    ckpt_bytes: int = 1000,
    status: str = "incomplete",
) -> Path:
    """A run folder as train.py leaves it after ``trainer.max_time``: record, logs, checkpoints."""
    d = out / name / run
    (d / "checkpoints").mkdir(parents=True)
    (d / ".hydra").mkdir()
    (d / "csv").mkdir()
    record = {
        "status": status,
        "seed": 0,
        "steps": step,
        "wall_time_s": 60.0,
        "config": {"name": name, "seed": 0, "trainer": {"max_steps": MAX_STEPS}},
    }
    (d / "metrics.json").write_text(json.dumps(record))
    (d / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (d / "csv" / "metrics.csv").write_text("step,train/loss\n1,2.0\n")
    (d / "train.log").write_text("log\n")
    pad = torch.frombuffer(bytearray(os.urandom(ckpt_bytes)), dtype=torch.uint8)  # like weights
    torch.save({"global_step": step, "pad": pad}, d / "checkpoints" / "last.ckpt")
    torch.save(
        {"global_step": step - 1, "pad": pad}, d / "checkpoints" / f"best-step{step - 1}.ckpt"
    )
    (d / "checkpoints" / "last.ckpt.tmp").write_bytes(b"half")  # an interrupted atomic save
    stale = d / "checkpoints" / "best-step1.ckpt"  # an earlier best Lightning did not delete
    stale.write_bytes(b"old")
    os.utime(stale, (1, 1))
    return d


def args_for(tmp_path: Path, *extra: str):  # noqa: ANN201
    return campaign.parse_args(
        ["--plan", str(plan_file(tmp_path)), "--pack-dir", str(tmp_path / "pack"), *extra]
    )


def names(archive: Path) -> set[str]:
    with tarfile.open(archive) as tar:
        return set(tar.getnames())


# ----------------------------------------------------------------------------- packing


def test_statuses_match_train_py() -> None:
    assert set(campaign_resume.RESUMABLE) == set(RESUMABLE)


def test_resume_archive_holds_what_resume_reads_and_stays_under_the_cap(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    small = partial_run(out, run="s0_small", ckpt_bytes=200_000)
    big = partial_run(out, "lra-listops-performer", run="s0_big", ckpt_bytes=400_000)
    small2 = partial_run(out, "lra-listops-fnet", run="s0_small2", ckpt_bytes=100_000)
    archive = tmp_path / "pack" / "resume.tar"
    cap = 800_000  # small (2 x 200 kB) and small2 (2 x 100 kB) fit, big (2 x 400 kB) does not
    got = campaign_resume.pack_resume(out, [small, big, small2], archive, cap)
    assert got.packed == [f"{NAME}/s0_small", "lra-listops-fnet/s0_small2"]
    assert list(got.too_large) == ["lra-listops-performer/s0_big"]
    assert got.too_large["lra-listops-performer/s0_big"] > 800_000
    assert got.size == archive.stat().st_size <= cap
    members = names(archive)
    for f in (
        "metrics.json",
        ".hydra/config.yaml",
        "csv/metrics.csv",
        "train.log",
        "checkpoints/last.ckpt",
        "checkpoints/best-step99.ckpt",
    ):
        assert f"runs/{NAME}/s0_small/{f}" in members
    assert not any(m.endswith((".tmp", "best-step1.ckpt")) or "s0_big" in m for m in members)
    manifest = json.loads(tarfile.open(archive).extractfile("resume.json").read())
    assert manifest["runs"] == got.packed
    # the cap binds: just below the two small runs' size only the first fits
    assert campaign_resume.pack_resume(out, [small, small2], archive, 600_000).packed == [
        f"{NAME}/s0_small"
    ]


def test_campaign_packs_only_its_own_resumable_runs_and_notes_the_large_ones(
    tmp_path: Path,
) -> None:
    out = tmp_path / "runs"
    partial_run(out, run="s0_a", ckpt_bytes=3_000_000)
    partial_run(out, "lra-listops-performer", run="s0_b", ckpt_bytes=10_000)
    partial_run(out, "lra-listops-fnet", run="s0_c", ckpt_bytes=10_000)  # not in the plan
    c = campaign.Campaign(
        campaign.load_plan(args_for(tmp_path).plan), args_for(tmp_path, "--resume-cap-mib", "1")
    )
    c.pack(1)
    c.pack(1)  # a second pack does not repeat the note
    members = names(tmp_path / "pack" / "resume.tar")
    assert "runs/lra-listops-performer/s0_b/checkpoints/last.ckpt" in members
    assert not any("s0_a" in m or "s0_c" in m for m in members)
    with tarfile.open(tmp_path / "pack" / "campaign.tar.gz") as tar:
        ledger = tar.extractfile("ledger.txt").read().decode()
    line = next(x for x in ledger.splitlines() if x.startswith("listops    softmax"))
    assert "partial" in line and line.count("checkpoint too large to travel (5.7 MiB)") == 1
    other = next(x for x in ledger.splitlines() if x.startswith("listops    performer"))
    assert "too large" not in other
    # a second command with other --variants packs its own runs only
    c2 = campaign.Campaign(
        campaign.load_plan(args_for(tmp_path).plan),
        campaign.parse_args(
            ["--plan", str(tmp_path / "plan.yaml"), "--pack-dir", str(tmp_path / "p2")]
            + ["--variants", "softmax"]
        ),
    )
    c2.pack(1)
    assert {m.split("/")[1] for m in names(tmp_path / "p2" / "resume.tar") if "/" in m} == {NAME}


def test_interrupted_runs_are_resumable(tmp_path: Path) -> None:
    d = partial_run(tmp_path, status="interrupted")
    assert campaign.resumable(d, MAX_STEPS)
    assert not campaign.resumable(d, 4)
    record = json.loads((d / "metrics.json").read_text())
    (d / "metrics.json").write_text(json.dumps({**record, "status": "completed"}))
    assert not campaign.resumable(d, MAX_STEPS)
    (d / "metrics.json").write_text(json.dumps({**record, "status": "failed"}))
    assert not campaign.resumable(d, MAX_STEPS)
    (d / "campaign.json").write_text(json.dumps({"segments": [{"killed": True}]}))
    assert campaign.resumable(d, MAX_STEPS)  # the campaign stopped it at the deadline
    # and such a folder travels and comes back like the others
    archive = tmp_path / "resume.tar"
    assert campaign_resume.pack_resume(tmp_path, [d], archive, 2**20).packed == [f"{NAME}/s0_a"]
    restored, _ = campaign_resume.restore(archive, tmp_path / "b", set(), campaign_pack.record_key)
    assert restored == [f"{NAME}/s0_a at step 100"]


# ----------------------------------------------------------------------------- restoring


def restore_cli(tmp_path: Path, archive: Path, capsys) -> tuple[int, str, str]:
    rc = campaign.main(["--plan", str(tmp_path / "plan.yaml"), "--restore", str(archive)])
    got = capsys.readouterr()
    return rc, got.out, got.err


def test_restore_then_the_ledger_shows_partial_and_the_next_command_resumes(
    tmp_path: Path, capsys
) -> None:
    plan_file(tmp_path)
    out = tmp_path / "runs"
    d = partial_run(out, step=123)
    archive = tmp_path / "resume.tar"
    campaign_resume.pack_resume(out, [d], archive, 2**20)
    shutil.rmtree(out)  # the machine was handed back
    rc, text, _ = restore_cli(tmp_path, archive, capsys)
    assert rc == 0 and f"restored {NAME}/s0_a at step 123" in text
    assert (d / "checkpoints" / "last.ckpt").is_file() and not (d / "last.ckpt.tmp").exists()
    assert not list(out.glob(".restore-*"))  # the staging folder is gone
    rc = campaign.main(["--plan", str(tmp_path / "plan.yaml"), "--dry-run", "--gpus", "1"])
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("listops    softmax"))
    assert "partial" in line and "123/5000" in line
    assert f"resume={d}" in text
    # restoring the same archive again changes nothing
    rc, text, _ = restore_cli(tmp_path, archive, capsys)
    assert rc == 0 and "already at step 123 (archive: step 123)" in text


def test_pack_resume_gathers_every_unfinished_run_here_for_one_restore(
    tmp_path: Path, capsys
) -> None:
    """Runs restored from two machines' archives leave here as one archive and come back."""
    plan_file(tmp_path)
    out = tmp_path / "runs"
    softmax = partial_run(out, step=321)
    performer = partial_run(out, "lra-listops-performer", "s0_b", step=42)
    archive = tmp_path / "resume.tar"
    rc = campaign.main(["--plan", str(tmp_path / "plan.yaml"), "--pack-resume", str(archive)])
    text = capsys.readouterr().out
    assert rc == 0 and "2 run folder(s)" in text
    assert f"runs/{NAME}/s0_a/checkpoints/last.ckpt" in names(archive)
    assert "runs/lra-listops-performer/s0_b/checkpoints/last.ckpt" in names(archive)
    only = tmp_path / "softmax.tar"
    plan_args = ["--plan", str(tmp_path / "plan.yaml"), "--variants", "softmax"]
    assert campaign.main([*plan_args, "--pack-resume", str(only)]) == 0
    assert not any("performer" in n for n in names(only))
    shutil.rmtree(out)  # the next machine starts bare
    rc, text, _ = restore_cli(tmp_path, archive, capsys)
    assert rc == 0 and "2 run folder(s) restored" in text
    assert campaign_resume.checkpoint_step(softmax) == 321
    assert campaign_resume.checkpoint_step(performer) == 42


def test_restore_never_goes_back_or_over_a_final_record(tmp_path: Path, capsys) -> None:
    plan_file(tmp_path)
    src, out = tmp_path / "src", tmp_path / "runs"
    archive = tmp_path / "resume.tar"
    campaign_resume.pack_resume(
        src,
        [partial_run(src, run="s0_a", step=50), partial_run(src, run="s0_b", step=50)]
        + [partial_run(src, run="s0_c", step=50)],
        archive,
        2**20,
    )
    partial_run(out, run="s0_a", step=80)  # further on here
    partial_run(out, run="s0_b", step=20)  # behind: replaced
    partial_run(out, run="s0_c", step=10, status="failed")  # final
    rc, text, _ = restore_cli(tmp_path, archive, capsys)
    assert rc == 0
    assert "already at step 80 (archive: step 50)" in text
    assert f"restored {NAME}/s0_b at step 50" in text
    assert "holds a failed record" in text
    assert campaign_resume.checkpoint_step(out / NAME / "s0_a") == 80
    assert campaign_resume.checkpoint_step(out / NAME / "s0_b") == 50
    assert json.loads((out / NAME / "s0_c" / "metrics.json").read_text())["status"] == "failed"
    # once the run has a completed record (here in results), none of its folders come back
    partial_run(tmp_path / "results", run="done", status="completed")
    shutil.rmtree(out / NAME / "s0_b")
    rc, text, _ = restore_cli(tmp_path, archive, capsys)
    assert text.count("a completed record of this run exists") == 3
    assert not (out / NAME / "s0_b").exists()


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo(f"runs/{NAME}/s0_a/metrics.json")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"{}"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("/etc/evil", tarfile.REGTYPE, "absolute path"),
        (f"runs/{NAME}/../../../evil", tarfile.REGTYPE, "climbs out"),
        (f"runs/{NAME}/s0_a/link", tarfile.SYMTYPE, "is a link"),
        ("evil.txt", tarfile.REGTYPE, "outside runs/<name>/<run>/"),
        (f"runs/{NAME}", tarfile.REGTYPE, "outside runs/<name>/<run>/"),
    ],
)
def test_restore_refuses_unsafe_archives_whole(
    tmp_path: Path, capsys, name: str, kind: bytes, words: str
) -> None:
    plan_file(tmp_path)
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
    rc, _, err = restore_cli(tmp_path, _tar_with(tmp_path, member), capsys)
    assert rc == 2 and words in err and err.startswith("error: --restore")
    assert err.count("\n") == 1
    assert not (tmp_path / "runs" / NAME).exists()  # nothing extracted
    assert not list((tmp_path / "runs").glob(".restore-*"))


def test_restore_of_a_missing_or_broken_file_is_one_sentence(tmp_path: Path, capsys) -> None:
    plan_file(tmp_path)
    rc, _, err = restore_cli(tmp_path, tmp_path / "nope.tar", capsys)
    assert rc == 2 and err.strip() == f"error: --restore {tmp_path / 'nope.tar'} is not a file"
    (tmp_path / "junk.tar").write_text("not a tar")
    rc, _, err = restore_cli(tmp_path, tmp_path / "junk.tar", capsys)
    assert rc == 2 and "is not a readable tar archive" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- a real checkpoint


class _FirstStep(pl.Callback):
    """Remembers the global step of the first batch this process trains."""

    first: int | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        if _FirstStep.first is None:
            _FirstStep.first = trainer.global_step


def _cfg(data: Path, *extra: str):  # noqa: ANN202
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                "debug=default",
                "name=moved",
                "paths.output_dir=runs",  # relative: the same on both machines
                f"paths.data_dir={data}",
                "trainer.max_steps=7",  # no validation after step 6: the best stays at step 4
                "trainer.val_check_interval=4",
                "callbacks.checkpoint_every_n_steps=3",
                "trainer.enable_progress_bar=false",
                *extra,
            ],
        )


def test_a_run_moved_to_another_machine_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash at step 6 on machine A, pack, lose A, restore on B, finish from step 6."""
    data = tmp_path / "data"
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    machine_a.mkdir()
    machine_b.mkdir()
    make_callbacks = harness._make_callbacks
    monkeypatch.chdir(machine_a)
    monkeypatch.setattr(
        harness, "_make_callbacks", lambda exp, d: {**make_callbacks(exp, d), "crash": CtrlCAt(6)}
    )
    # Hydra hands train.py an absolute run folder
    run_dir = machine_a / "runs" / "moved" / "s0_x"
    with pytest.raises(harness.RunInterruptedError):
        harness.run(_cfg(data, f"paths.run_dir={run_dir}"))
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    saved_best = [v["best_model_path"] for v in ckpt["callbacks"].values() if v.get("monitor")]
    assert saved_best[0].startswith(str(machine_a))  # names machine A: local_best finds it on B
    archive = tmp_path / "resume.tar"
    packed = campaign_resume.pack_resume(machine_a / "runs", [run_dir], archive, 15 * 2**20)
    assert packed.packed == ["moved/s0_x"]
    shutil.rmtree(machine_a)

    monkeypatch.chdir(machine_b)
    restored, _ = campaign_resume.restore(
        archive, machine_b / "runs", set(), campaign_pack.record_key
    )
    assert restored == ["moved/s0_x at step 6"]
    _FirstStep.first = None
    monkeypatch.setattr(
        harness, "_make_callbacks", lambda exp, d: {**make_callbacks(exp, d), "first": _FirstStep()}
    )
    record = harness.run(_cfg(data, "resume=runs/moved/s0_x"))
    assert _FirstStep.first == 6  # continued, not started again
    assert record["status"] == "completed" and record["steps"] == 7
    assert record["test_acc_best_val"] is not None  # the best checkpoint travelled too
    assert not Path(record["run_dir"]).is_absolute()


# ----------------------------------------------------------------------------- through the script


@pytest.mark.slow  # ~80 s on 2 cores: two train.py segments
def test_a_segment_packed_lost_restored_and_resumed_through_the_script(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segment 1 stops on max_time; its folder is lost, restored from resume.tar, resumed."""
    plan = {
        "name": "t",
        "output_dir": str(tmp_path / "runs"),
        "results_dir": str(tmp_path / "results"),
        "trainer": "cpu",
        "overrides": ["logger=csv", f"paths.data_dir={tmp_path / 'data'}"],
        "tasks": {"listops": {"seeds": 1, "per_gpu": 1, "ms_per_step": 60}},
        "variants": [{"name": "softmax"}],
        "priority": [{"task": "listops", "seeds": [0]}],
    }
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    monkeypatch.setattr(campaign, "KILL_GUARD_S", 1.0)  # let max_time, not SIGTERM, end it

    def segment(pack: str) -> str:
        # max_time = 60 s - 51 s margin = 9 s of training; no second run fits
        rc = campaign.main(
            ["--plan", str(tmp_path / "plan.yaml"), "--gpus", "0", "--skip-data"]
            + ["--deadline-min", "1", "--margin-min", "0.85", "--min-run-min", "0.01"]
            + ["--run-workers", "0", "--pack-dir", str(tmp_path / pack), "--extra-overrides"]
            + ["debug=default trainer.max_steps=5000 trainer.val_check_interval=20"]
        )
        assert rc == 0
        return capsys.readouterr().out

    out = segment("pack1")
    assert "end listops/softmax/seed0: incomplete" in out
    (run_dir,) = (tmp_path / "runs" / NAME).iterdir()
    step = campaign_resume.checkpoint_step(run_dir)
    assert step > 0
    assert f"runs/{NAME}/{run_dir.name}/checkpoints/last.ckpt" in names(
        tmp_path / "pack1" / "resume.tar"
    )
    shutil.rmtree(tmp_path / "runs")  # the machine is handed back

    rc = campaign.main(
        ["--plan", str(tmp_path / "plan.yaml"), "--restore", str(tmp_path / "pack1/resume.tar")]
    )
    assert rc == 0
    assert f"restored {NAME}/{run_dir.name} at step {step}" in capsys.readouterr().out

    out = segment("pack2")
    assert f"(resumed at step {step})" in out
    side = json.loads((run_dir / "campaign.json").read_text())
    assert [s["steps_before"] for s in side["segments"]] == [0, step]
    assert side["segments"][1]["steps_after"] > step
    assert f"Resuming {run_dir}" in (run_dir / "console.log").read_text()
    assert campaign_resume.checkpoint_step(run_dir) == side["segments"][1]["steps_after"]
