"""scripts/campaign.py: plan, done detection, ledger, pack/unpack, scheduling, dry and real runs."""

from __future__ import annotations

import json
import sys
import tarfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import campaign  # noqa: E402
import campaign_pack  # noqa: E402
import campaign_plan  # noqa: E402

from tests.campaign_runs import fake_runs  # noqa: E402

LRA_PLAN = ROOT / "conf" / "campaign" / "lra.yaml"


def small_plan(tmp_path: Path, **changes) -> Path:
    """A two-task plan writing below ``tmp_path``."""
    plan = {
        "name": "t",
        "output_dir": str(tmp_path / "runs"),
        "results_dir": str(tmp_path / "results"),
        "overrides": ["logger=csv"],
        "tasks": {
            "listops": {"seeds": 2, "per_gpu": 1, "ms_per_step": 60},
            "pathfinder": {
                "seeds": 1,
                "seeds_by_variant": {"softmax": 2},
                "per_gpu": 4,
                "ms_per_step": 6,
            },
        },
        "variants": [
            {"name": "softmax"},
            {"name": "lst-mixed", "preset": "mixed"},
            {"name": "nope"},
        ],
        "priority": [
            {"task": "listops", "seeds": [0]},
            {"task": "pathfinder", "seeds": [0]},
            {"task": "listops", "seeds": [1]},
            {"task": "pathfinder", "seeds": [1]},
        ],
    }
    plan.update(changes)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


def fake_record(
    root: Path,
    name: str,
    seed: int,
    *,
    status: str = "completed",
    max_steps: int = 5000,
    steps: int | None = None,
    wall: float = 300.0,
    run: str | None = None,
    fields: dict | None = None,
) -> Path:
    """A metrics.json with the fields done-detection reads (as train.py writes them), and
    ``fields`` on top."""
    run_dir = root / name / (run or f"s{seed}_{status}_{max_steps}")
    run_dir.mkdir(parents=True)
    data = {
        "status": status,
        "failure_reason": "NaN loss" if status == "failed" else None,
        "seed": seed,
        "steps": max_steps if steps is None else steps,
        "wall_time_s": wall,
        "test_acc": 0.37,
        "config": {"name": name, "seed": seed, "trainer": {"max_steps": max_steps}},
        **(fields or {}),
    }
    (run_dir / "metrics.json").write_text(json.dumps(data))
    return run_dir


# ----------------------------------------------------------------------------- plan


def test_lra_plan_lists_every_run_in_priority_order() -> None:
    plan = campaign_plan.load_plan(LRA_PLAN)
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    n_var = len(plan.variants)
    assert len(runs) == 3 * n_var + 2 * n_var + 3  # seeds 3 on ListOps, 2 (3 for 3) on PF-32
    assert [r.task for r in runs[:n_var]] == ["listops"] * n_var
    assert {r.seed for r in runs[:n_var]} == {0}
    assert runs[n_var].key == ("pathfinder", "softmax", 0)
    third = {r.variant for r in runs if r.task == "pathfinder" and r.seed == 2}
    assert third == {"softmax", "lst-dct", "s4d"}
    mixed = next(r for r in runs if r.variant == "lst-mixed")
    assert mixed.preset.path.name == "mixed-listops.yaml" and mixed.preset.exists
    assert mixed.preset.name == "lra-listops-mixed" and mixed.max_steps == 5000


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"priority": [{"task": "listops", "seeds": [0, 1]}]}, "never schedules pathfinder"),
        ({"priority": [{"task": "image", "seeds": [0]}]}, "names task 'image'"),
        ({"variants": [{"name": "a"}, {"name": "a"}]}, "listed twice"),
        ({"surprise": 1}, "surprise"),
        ({"tasks": {"listops": {"seeds": 0, "ms_per_step": 1}}}, "tasks.listops.seeds"),
    ],
)
def test_bad_plan_is_one_sentence(tmp_path: Path, change: dict, words: str) -> None:
    with pytest.raises(campaign_plan.PlanError) as err:
        campaign_plan.load_plan(small_plan(tmp_path, **change))
    message = str(err.value)
    assert words in message and "\n" not in message


def test_bad_plan_on_the_command_line_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [\n")
    assert campaign.main(["--plan", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: plan") and "not valid YAML" in err and "\n" not in err
    assert campaign.main(["--plan", str(tmp_path / "missing.yaml"), "--dry-run"]) == 2
    capsys.readouterr()
    assert campaign.main(["--plan", str(LRA_PLAN), "--dry-run", "--tasks", "imag"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: --tasks names ['imag'], not in the plan; choose from ['listops', 'pathfinder']"
    )


def test_variant_without_preset_is_skipped(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    nope = [r for r in runs if r.variant == "nope"]
    assert nope and all(r.state == "skipped" for r in nope)
    assert "nope-listops.yaml" in nope[0].note


# ----------------------------------------------------------------------------- done detection


def test_done_detection_needs_name_seed_steps_and_completed(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    res = tmp_path / "results"
    fake_record(res, "lra-listops-softmax", 0)  # done
    fake_record(res, "lra-listops-softmax", 1, max_steps=4)  # debug-length run: not done
    fake_record(res, "lra-listops-mixed", 0, status="incomplete", steps=3000)
    fake_record(res, "lra-listops-mixed", 1, status="failed", steps=10)
    fake_record(res, "lra-pathfinder-softmax", 1, max_steps=62400, status="completed")
    records = campaign_plan.scan_records([res])
    campaign_plan.mark_done(runs, records)
    state = {r.key: r.state for r in runs}
    assert state[("listops", "softmax", 0)] == "done"
    assert state[("listops", "softmax", 1)] == "left"
    assert state[("listops", "lst-mixed", 0)] == "left"
    assert state[("listops", "lst-mixed", 1)] == "failed"
    assert state[("pathfinder", "softmax", 1)] == "done"
    assert state[("pathfinder", "softmax", 0)] == "left"
    assert state[("listops", "nope", 0)] == "skipped"


def _preset_record(
    root: Path, seed: int, run: str, status: str = "completed", **changes: object
) -> Path:
    """A completed lra record of experiment=lra/softmax-listops whose config is the preset's
    as composed now, with dotted ``changes`` applied (a value the preset held earlier)."""
    from experiments.protocol import preset_config

    config = json.loads(json.dumps(preset_config("lra/softmax-listops")))
    config["seed"] = seed
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[leaf] = value
    fields = {"protocol": "lra", "config": config}
    return fake_record(root, "lra-listops-softmax", seed, status=status, run=run, fields=fields)


def test_a_run_of_an_earlier_preset_revision_does_not_count_as_done(tmp_path: Path) -> None:
    """Seed 0 was made while the preset held another init: after the preset changed it is
    a run of an earlier plan, so the campaign runs it again, and unpack accepts the new one."""
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    res = tmp_path / "results"
    _preset_record(res, 0, "s0_old", **{"model.init_weights": "torch"})
    _preset_record(res, 1, "s1_now")
    records = campaign_plan.scan_records([res])
    assert [r.stale for r in records] == [True, False]
    campaign_plan.mark_done(runs, records)
    state = {r.key: r.state for r in runs}
    assert state[("listops", "softmax", 0)] == "left"
    assert state[("listops", "softmax", 1)] == "done"
    assert campaign_pack.completed_keys(res) == {("lra-listops-softmax", 1, 5000)}
    # a part-way run of the earlier revision is not resumed under the preset as it is now
    stale = {"model.init_weights": "torch"}
    part = _preset_record(tmp_path / "runs", 0, "s0_part", status="incomplete", **stale)
    (part / "checkpoints").mkdir()
    (part / "checkpoints" / "last.ckpt").write_bytes(b"")
    run0 = next(r for r in runs if r.key == ("listops", "softmax", 0))
    assert campaign.resumable_dir(tmp_path / "runs", run0) is None
    out = tmp_path / "device"
    _preset_record(out, 0, "s0_new")
    archive = tmp_path / "campaign.tar.gz"
    campaign_pack.pack(out, archive)
    copied, messages = campaign_pack.unpack(archive, res)
    assert [Path(c).name for c in copied] == ["s0_new"] and not messages


def test_step_rate_falls_back_on_records_of_an_earlier_preset_revision(tmp_path: Path) -> None:
    """Until the preset as it is now has a record, its earlier revision's rate (here 60 ms per
    step) estimates the run better than the plan's flat figure; a current record wins."""
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    res = tmp_path / "results"
    _preset_record(res, 0, "s0_old", **{"model.init_weights": "torch"})  # 300 s, 5000 steps
    key = ("listops", "softmax")
    rates, measured = campaign_plan.ms_per_step(runs, campaign_plan.scan_records([res]), plan)
    assert rates[key] == pytest.approx(60.0) and measured == 1
    assert rates[("listops", "lst-mixed")] == plan.tasks["listops"].ms_per_step
    now = _preset_record(res, 1, "s1_now")
    data = json.loads((now / "metrics.json").read_text())
    (now / "metrics.json").write_text(json.dumps({**data, "wall_time_s": 500.0}))
    rates, measured = campaign_plan.ms_per_step(runs, campaign_plan.scan_records([res]), plan)
    assert rates[key] == pytest.approx(100.0) and measured == 1


def test_ledger_counts_and_estimates(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    res = tmp_path / "results"
    # measured: 600 GPU-s over 5000 steps = 120 ms/step for listops softmax
    run_dir = fake_record(res, "lra-listops-softmax", 0, wall=1200.0)
    (run_dir / campaign_plan.SIDE_CAR).write_text(
        json.dumps({"segments": [{"wall_s": 1200.0, "per_gpu": 2}]})
    )
    records = campaign_plan.scan_records([res])
    campaign_plan.mark_done(runs, records)
    text = "\n".join(campaign_plan.ledger_lines(runs, plan, records, "HEAD"))
    lines = text.splitlines()
    assert lines[0] == "HEAD"
    done_line = next(line for line in lines if line.startswith("listops    softmax           0"))
    assert "done" in done_line and "5000/5000" in done_line and "10.0" in done_line
    # left: listops softmax seed 1 at measured 120 ms (10 min), mixed x2 at planned 60 ms
    # (5 min each), pathfinder softmax x2 and mixed x1 at 6 ms x 62400 steps (6.24 min each)
    expected = 10 + 2 * 5 + 3 * 6.24
    assert f"estimated left {expected:.1f}" in lines[-1]
    assert "done 1/7" in lines[-1] and "skipped 3" in lines[-1] and "GPU-min used 10.0" in lines[-1]


# ----------------------------------------------------------------------------- pack / unpack


def test_pack_unpack_roundtrip_without_checkpoints_and_refusing_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    done = fake_record(out, "lra-listops-softmax", 0, run="s0_a")
    (done / "checkpoints").mkdir()
    (done / "checkpoints" / "last.ckpt").write_bytes(b"x" * 100)
    (done / ".hydra").mkdir()
    (done / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (done / "csv").mkdir()
    (done / "csv" / "metrics.csv").write_text("step,loss\n1,2.0\n")
    (done / "train.log").write_text("log\n")
    fake_record(out, "lra-listops-softmax", 1, run="s1_b", status="incomplete", steps=10)
    archive = tmp_path / "pack" / "campaign.tar.gz"
    campaign_pack.pack(out, archive, {"ledger.txt": "L\n"})
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "ledger.txt" in names
    assert "runs/lra-listops-softmax/s0_a/hydra/config.yaml" in names
    assert "runs/lra-listops-softmax/s0_a/csv/metrics.csv" in names
    assert "runs/lra-listops-softmax/s1_b/metrics.json" in names
    assert not any("ckpt" in n or "checkpoints" in n for n in names)

    results = tmp_path / "results"
    copied, messages = campaign_pack.unpack(archive, results)
    assert copied == [str(results / "lra-listops-softmax" / "s0_a")]
    assert (results / "lra-listops-softmax/s0_a/hydra/config.yaml").read_text() == "seed: 0\n"
    assert any("s1_b" in m and "incomplete" in m for m in messages)
    before = (results / "lra-listops-softmax/s0_a/metrics.json").read_text()
    (results / "lra-listops-softmax/s0_a/metrics.json").write_text(before.replace("0.37", "0.5"))
    copied, messages = campaign_pack.unpack(archive, results)
    assert copied == [] and any("refused" in m for m in messages)
    assert "0.5" in (results / "lra-listops-softmax/s0_a/metrics.json").read_text()


def test_unpack_refuses_a_second_record_of_the_same_run(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    fake_record(out, "lra-listops-softmax", 0, run="s0_new")
    fake_record(tmp_path / "results", "lra-listops-softmax", 0, run="old")
    archive = tmp_path / "c.tar.gz"
    campaign_pack.pack(out, archive)
    copied, messages = campaign_pack.unpack(archive, tmp_path / "results")
    assert copied == [] and "already has a completed record" in messages[0]
    assert not (tmp_path / "results" / "lra-listops-softmax" / "s0_new").exists()


# ----------------------------------------------------------------------------- scheduling


def test_count_peers_keeps_the_most_segments_seen_on_each_gpu() -> None:
    def active(gpu: int) -> campaign.Active:
        return campaign.Active(None, (gpu,), Fraction(1, 3), None, Path("."), 0.0, 0, False)

    first, other = active(0), active(1)
    campaign.count_peers([first, other])
    assert (first.peers, other.peers) == (1, 1)
    second, third = active(0), active(0)
    campaign.count_peers([first, other, second, third])
    assert (first.peers, other.peers, second.peers) == (3, 1, 3)
    campaign.count_peers([first])  # the others ended: the most seen stays
    assert first.peers == 3
    # a run over GPUs 1 and 2 counts the busier of them
    wide = campaign.Active(None, (1, 2), Fraction(1), None, Path("."), 0.0, 0, False)
    campaign.count_peers([other, wide])
    assert (other.peers, wide.peers) == (2, 2)


def test_work_queue_puts_resumable_runs_first_and_skips_launched_ones() -> None:
    runs = fake_runs("LPLPL")
    states = ["left", "done", "partial", "left", "partial"]
    for run, state in zip(runs, states, strict=True):
        run.state = state
    assert [r.seed for r in campaign.work_queue(runs)] == [2, 4, 0, 3]
    assert [r.seed for r in campaign.work_queue(runs, {runs[4].key, runs[0].key})] == [2, 3]


def test_work_queue_takes_the_partial_runs_nearest_to_done_first() -> None:
    runs = fake_runs("PPPL")  # max_steps 10 each
    for run, (state, steps) in zip(
        runs, [("partial", 2), ("partial", 9), ("left", 0), ("partial", 5)], strict=True
    ):
        run.state, run.steps = state, steps
    assert [r.seed for r in campaign.work_queue(runs)] == [1, 3, 0, 2]


def test_work_queue_finishes_partial_runs_with_a_dead_head_after_fresh_ones() -> None:
    runs = fake_runs("PPPL")  # max_steps 10 each
    for run, (state, steps) in zip(
        runs, [("partial", 2), ("partial", 9), ("left", 0), ("partial", 5)], strict=True
    ):
        run.state, run.steps = state, steps
    runs[1].dead_head = True
    assert [r.seed for r in campaign.work_queue(runs)] == [3, 0, 2, 1]


# ----------------------------------------------------------------------------- commands


def test_max_time_format() -> None:
    assert campaign.max_time(7 * 60 + 29.9) == "00:00:07:29"
    assert campaign.max_time(90061) == "01:01:01:01"
    assert campaign.max_time(-5) == "00:00:00:01"


def test_resumable_folder_gives_resume_command(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    run = campaign_plan.planned_runs(plan, ROOT / "conf")[0]
    out = tmp_path / "runs"
    assert campaign.resumable_dir(out, run) is None
    fake_record(out, "lra-listops-softmax", 0, run="s0_done")  # completed: not resumable
    (out / "lra-listops-softmax/s0_done/checkpoints").mkdir()
    (out / "lra-listops-softmax/s0_done/checkpoints/last.ckpt").write_bytes(b"")
    assert campaign.resumable_dir(out, run) is None
    part = fake_record(out, "lra-listops-softmax", 0, run="s0_part", status="incomplete")
    (part / "checkpoints").mkdir()
    (part / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert campaign.resumable_dir(out, run) == part
    args = campaign.parse_args(["--extra-overrides", "debug=default x=1"])
    cmd = campaign.train_command(plan, run, part, resume=True, args=args, seconds=400, workers=3)
    assert cmd[1:] == [
        "train.py",
        f"hydra.run.dir={part}",
        "experiment=lra/softmax-listops",
        "seed=0",
        "trainer=gpu",
        f"paths.output_dir={out}",
        f"resume={part}",
        "trainer.max_time=00:00:06:40",
        "data.num_workers=3",
        "logger=csv",
        "debug=default",
        "x=1",
    ]
    slurm = campaign.parse_args(["--launcher", "slurm"])
    cmd = campaign.train_command(
        plan, run, part, resume=False, args=slurm, seconds=None, workers=None
    )
    assert cmd[2:6] == [
        "-m",
        "launcher=submitit_slurm",
        f"hydra.sweep.dir={part.parent}",
        "hydra.sweep.subdir=s0_part",
    ]
    assert not any(c.startswith(("resume=", "trainer.max_time")) for c in cmd)


def test_dry_run_end_to_end(tmp_path: Path, capsys) -> None:
    plan = small_plan(tmp_path)
    fake_record(tmp_path / "results", "lra-listops-softmax", 0)
    rc = campaign.main(["--plan", str(plan), "--dry-run", "--gpus", "2", "--deadline-min", "9"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "done 1/7" in out
    commands = [line for line in out.splitlines() if "train.py" in line]
    # listops seed 0 of mixed on GPU 0, then pathfinder seed 0 runs share GPU 1
    assert commands[0].startswith("CUDA_VISIBLE_DEVICES=0 python train.py")
    assert "experiment=lra/mixed-listops" in commands[0] and "seed=0" in commands[0]
    assert "trainer.max_time=00:00:07:" in commands[0]
    assert all("CUDA_VISIBLE_DEVICES=1" in c and "pathfinder" in c for c in commands[1:])
    # ListOps seed 1 (next in plan order) cannot fit and reserves GPU 1, so Pathfinder seed 1
    # waits: 1 ListOps + the 2 Pathfinder seed-0 runs
    assert len(commands) == 3
    assert not (tmp_path / "runs").exists()


def test_ledger_says_when_a_part_way_run_has_a_dead_head(tmp_path: Path, capsys) -> None:
    plan = small_plan(tmp_path)
    for seed, live in ((0, 0), (1, 12)):
        part = fake_record(
            tmp_path / "runs",
            "lra-listops-softmax",
            seed,
            status="incomplete",
            steps=1000,
            fields={"head_live_units": live},
        )
        (part / "checkpoints").mkdir()
        (part / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert campaign.main(["--plan", str(plan), "--dry-run"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "  partial  " in line]
    dead = [line.split() for line in lines if campaign.DEAD_HEAD in line]
    assert (
        len(lines) == 2 and len(dead) == 1 and dead[0][:4] == ["listops", "softmax", "0", "partial"]
    )
    state = campaign.Campaign(
        campaign_plan.load_plan(plan), campaign.parse_args(["--plan", str(plan), "--dry-run"])
    )
    queue = [(r.seed, r.state, r.dead_head) for r in campaign.work_queue(state.runs)]
    assert queue[0] == (1, "partial", False) and queue[-1] == (0, "partial", True)


@pytest.mark.parametrize(("deadline", "expected"), [("9", 2), ("7.5", 0), ("6", 0)])
def test_finish_only_launches_the_runs_expected_to_end_before_the_deadline(
    tmp_path: Path, capsys, deadline: str, expected: int
) -> None:
    """ListOps: a record of 345 s is 45 s of start-up and 5,000 steps x 60 ms = 5 min, so a
    run is expected to take 45 s + 1.2 x 5 min = 6.75 min with the start-up and the safety
    factor; Pathfinder: 62,400 x 6 ms x 4 per GPU = 25 min. At 7.5 min the bare 5 min would fit
    the 6 left after the margin, the expected 6.75 do not."""
    plan = small_plan(tmp_path)
    fake_record(tmp_path / "results", "lra-listops-softmax", 0, wall=345.0)
    argv = ["--plan", str(plan), "--dry-run", "--gpus", "2", "--deadline-min", deadline]
    assert campaign.main([*argv, "--finish-only"]) == 0
    commands = [line for line in capsys.readouterr().out.splitlines() if "train.py" in line]
    assert len(commands) == expected  # the margin (1.5 min) leaves 7.5 or 4.5 minutes
    assert all("listops" in c for c in commands)


@pytest.mark.parametrize(
    ("window", "listops", "held"), [("9", 2, True), ("6", 0, True), ("40", 1, False)]
)
def test_finish_within_launches_only_runs_expected_to_end_in_the_window(
    tmp_path: Path, capsys, window: str, listops: int, held: bool
) -> None:
    """Expected: ListOps 6.75 min, Pathfinder 45 s + 1.2 x 25 min = 30.75 min (see above);
    the window less the 1.5-minute margin must hold them. The command's own deadline (5 min)
    cuts the launched runs, whose checkpoints stay for the next command. With 40 minutes the
    Pathfinder runs fit too and share GPU 1, as in the first wave of the dry run above."""
    plan = small_plan(tmp_path)
    fake_record(tmp_path / "results", "lra-listops-softmax", 0, wall=345.0)
    argv = ["--plan", str(plan), "--dry-run", "--gpus", "2", "--deadline-min", "5"]
    argv += ["--pack-dir", str(tmp_path / "out"), "--checkpoints-stay"]
    assert campaign.main([*argv, "--finish-within-min", window]) == 0
    out = capsys.readouterr().out
    commands = [line for line in out.splitlines() if "train.py" in line]
    assert len([c for c in commands if "listops" in c]) == listops
    assert all("trainer.max_time=00:00:03:" in c for c in commands)  # this command's deadline
    assert (campaign.HELD_BEYOND_WINDOW in out) == held
    assert held == (not any("pathfinder" in c for c in commands))


def test_finish_by_reads_a_utc_clock_time_or_an_iso_time() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 12, 2, 17, 40, 30, tzinfo=UTC)
    assert campaign.minutes_until("18:10", now) == pytest.approx(29.5)
    assert campaign.minutes_until("2026-12-02T18:10:30+00:00", now) == pytest.approx(30.0)
    assert campaign.minutes_until("2026-12-02T18:10:30", now) == pytest.approx(30.0)  # UTC
    with pytest.raises(ValueError, match="is not after now"):
        campaign.minutes_until("17:00", now)
    for bad in ("25:00", "soon", "18h10"):
        with pytest.raises(ValueError, match="is not HH:MM"):
            campaign.minutes_until(bad, now)


def test_finish_by_holds_the_runs_that_would_end_after_it(tmp_path: Path, capsys) -> None:
    from datetime import UTC, datetime, timedelta

    plan = small_plan(tmp_path)
    fake_record(tmp_path / "results", "lra-listops-softmax", 0, wall=345.0)
    soon = (datetime.now(UTC) + timedelta(minutes=9, seconds=30)).isoformat()
    argv = ["--plan", str(plan), "--dry-run", "--gpus", "2", "--deadline-min", "5"]
    assert campaign.main([*argv, "--checkpoints-stay", "--finish-by", soon]) == 0
    out = capsys.readouterr().out
    commands = [line for line in out.splitlines() if "train.py" in line]
    assert len(commands) == 2 and all("listops" in c for c in commands)
    assert campaign.HELD_BEYOND_WINDOW in out
    with pytest.raises(SystemExit):
        campaign.main([*argv, "--finish-by", soon, "--finish-within-min", "9"])
    assert "choose one" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        campaign.main([*argv, "--finish-by", "yesterday"])
    assert "is not HH:MM" in capsys.readouterr().err


def test_finish_within_and_finish_only_together_are_refused(tmp_path: Path, capsys) -> None:
    argv = ["--plan", str(small_plan(tmp_path)), "--dry-run", "--deadline-min", "9"]
    with pytest.raises(SystemExit):
        campaign.main([*argv, "--finish-only", "--finish-within-min", "20"])
    assert "choose one" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        campaign.main([*argv, "--finish-within-min", "0"])
    assert "must be positive" in capsys.readouterr().err


@pytest.mark.parametrize(("num_params", "listops_runs"), [(100_000, 2), (10_000_000, 0)])
def test_runs_whose_checkpoint_cannot_travel_start_only_when_they_can_finish(
    tmp_path: Path, capsys, num_params: int, listops_runs: int
) -> None:
    """6 min leave 4.5 after the margin: a 5-minute ListOps run stops part-way. With 10M
    parameters its checkpoints (~229 MiB) cannot travel in resume.tar, so it is not started;
    with 100k parameters (~2 MiB) both seed-1 runs start, one per GPU."""
    plan = small_plan(tmp_path)
    fields = {"num_params": num_params}
    for name in ("lra-listops-softmax", "lra-listops-mixed"):  # seed 0 done: seed 1 left
        fake_record(tmp_path / "results", name, 0, wall=300.0, fields=fields)
    argv = ["--plan", str(plan), "--dry-run", "--gpus", "2", "--deadline-min", "6"]
    argv += ["--tasks", "listops"]
    assert campaign.main([*argv, "--pack-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    commands = [line for line in out.splitlines() if "train.py" in line]
    assert len(commands) == listops_runs
    assert (campaign.HELD in out) == (listops_runs == 0)
    assert campaign.main(argv) == 0  # no --pack-dir: checkpoints stay, nothing is held
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if "train.py" in line]) == 2
    stay = [*argv, "--pack-dir", str(tmp_path / "out"), "--checkpoints-stay"]
    assert campaign.main(stay) == 0  # the machine keeps them for its next command
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if "train.py" in line]) == 2
    assert campaign.HELD not in out


def test_step_rate_counts_the_start_up_of_every_segment_once(tmp_path: Path) -> None:
    """A record made in two segments of 200 s (one of them beside another run) started twice:
    its steps took (200 - 45) + (200 - 45) / 2 GPU-seconds, not its 300 GPU-seconds."""
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    run_dir = fake_record(tmp_path / "results", "lra-listops-softmax", 0, wall=400.0)
    segments = [{"wall_s": 200.0, "per_gpu": 1}, {"wall_s": 200.0, "per_gpu": 2}]
    (run_dir / campaign_plan.SIDE_CAR).write_text(json.dumps({"segments": segments}))
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    records = campaign_plan.scan_records([tmp_path / "results"])
    key = ("listops", "softmax")
    ledger_rates, _ = campaign_plan.ms_per_step(runs, records, plan)
    assert ledger_rates[key] == pytest.approx(1000 * (200 + 100) / 5000)  # start-up included
    rates, _ = campaign_plan.ms_per_step(runs, records, plan, start_up_s=45.0)
    assert rates[key] == pytest.approx(1000 * (155 + 77.5) / 5000)
    assert rates[("listops", "lst-mixed")] == plan.tasks["listops"].ms_per_step  # planned


def test_finish_only_without_a_deadline_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        campaign.main(["--plan", str(small_plan(tmp_path)), "--dry-run", "--finish-only"])
    assert "--finish-only needs --deadline-min" in capsys.readouterr().err


def test_finish_only_with_checkpoints_staying_is_refused(tmp_path: Path, capsys) -> None:
    argv = ["--plan", str(small_plan(tmp_path)), "--dry-run", "--deadline-min", "9"]
    with pytest.raises(SystemExit):
        campaign.main([*argv, "--finish-only", "--checkpoints-stay"])
    assert "contradict" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a real run


@pytest.mark.slow  # ~30 s on 2 cores: train.py's start-up dominates
def test_real_tiny_run_through_the_script(tmp_path: Path, capsys) -> None:
    """One debug-sized ListOps run on CPU: record, side car, archive and ledger."""
    plan = small_plan(
        tmp_path,
        trainer="cpu",
        overrides=["logger=csv", f"paths.data_dir={tmp_path / 'data'}"],
        tasks={"listops": {"seeds": 1, "per_gpu": 1, "ms_per_step": 60}},
        variants=[{"name": "softmax"}],
        priority=[{"task": "listops", "seeds": [0]}],
    )
    pack_dir = tmp_path / "out"
    rc = campaign.main(
        [
            "--plan",
            str(plan),
            "--gpus",
            "0",
            "--extra-overrides",
            "debug=default",
            "--pack-dir",
            str(pack_dir),
            "--skip-data",
            "--run-workers",
            "0",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "end listops/softmax/seed0: completed, rc 0, steps 0->4" in out
    (run_dir,) = (tmp_path / "runs" / "lra-listops-softmax").iterdir()
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["seed"] == 0
    side = json.loads((run_dir / "campaign.json").read_text())
    assert side["segments"][0]["steps_after"] == 4 and side["segments"][0]["rc"] == 0
    assert side["segments"][0]["runs_on_gpu"] == 1
    # each segment names the commit it ran (a resumed run may span several)
    assert side["segments"][0]["git_commit"] == record["git_commit"]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    with tarfile.open(pack_dir / "campaign.tar.gz") as tar:
        names = tar.getnames()
        ledger = tar.extractfile("ledger.txt").read().decode()
    assert f"runs/lra-listops-softmax/{run_dir.name}/metrics.json" in names
    assert f"runs/lra-listops-softmax/{run_dir.name}/train.log" in names
    assert not any(n.endswith(".ckpt") for n in names)
    assert "end listops/softmax/seed0: completed" in ledger


# ----------------------------------------------------------------------------- data, gate, deadline


def _softmax_listops_plan(tmp_path: Path, data: dict) -> campaign_plan.Plan:
    """One softmax ListOps run whose data is built by ``data``."""
    return campaign_plan.load_plan(
        small_plan(
            tmp_path,
            tasks={"listops": {"seeds": 1, "ms_per_step": 1, "data": data}},
            variants=[{"name": "softmax"}],
            priority=[{"task": "listops", "seeds": [0]}],
        )
    )


def test_data_is_built_once_and_timed(tmp_path: Path) -> None:
    marker = tmp_path / "data" / "made.txt"
    script = f"import pathlib,sys; p=pathlib.Path({str(marker)!r}); p.parent.mkdir(); "
    script += "p.write_text(' '.join(sys.argv[1:])); print('made it')"
    data = {"command": ["-c", script], "ready": {str(marker): 1}}
    plan = _softmax_listops_plan(tmp_path, data)
    args = campaign.parse_args(["--data-workers", "3"])
    first = campaign.Campaign(plan, args)
    first.ensure_data()
    assert marker.read_text() == "--workers 3"
    assert "rc=0" in first.data_log[0] and "(3 workers): made it" in first.data_log[0]
    assert first.cold == {"listops"}
    second = campaign.Campaign(plan, args)
    second.ensure_data()
    assert second.data_log[0].startswith("data listops: ready") and second.cold == set()


def test_a_second_campaign_waits_for_the_data_another_is_building(tmp_path: Path) -> None:
    marker = tmp_path / "data" / "made.txt"
    script = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('by this one')"
    data = {"command": ["-c", script], "ready": {str(marker): 1}}
    plan = _softmax_listops_plan(tmp_path, data)
    camp = campaign.Campaign(plan, campaign.parse_args([]))
    finished = threading.Event()
    worker = threading.Thread(target=lambda: (camp.ensure_data(), finished.set()))
    with campaign.data_lock(camp.output_dir, "listops"):  # another campaign is building
        worker.start()
        time.sleep(0.5)
        assert not finished.is_set()
        marker.parent.mkdir()
        marker.write_text("by the other")
    worker.join(30)
    assert finished.is_set() and marker.read_text() == "by the other"
    assert camp.data_log == ["data listops: ready (built by another campaign)"]
    assert camp.cold == set()


def test_gate_lets_one_run_build_a_fresh_cache_first(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    camp = campaign.Campaign(plan, campaign.parse_args([]))
    camp.cold = {"pathfinder"}
    queue = [r for r in camp.runs if r.state == "left"]
    gated = camp.gate(queue, [])
    pf = [r for r in gated if r.task == "pathfinder"]
    assert len(pf) == 1 and len([r for r in gated if r.task == "listops"]) == 4
    run_dir = tmp_path / "warming"
    (run_dir / "csv").mkdir(parents=True)
    warming = campaign.Active(pf[0], (0,), Fraction(1, 4), None, run_dir, 0.0, 0, False)
    assert not [r for r in camp.gate(queue, [warming]) if r.task == "pathfinder"]
    (run_dir / "csv" / "metrics.csv").write_text("step\n")  # it trains: the cache exists
    assert len([r for r in camp.gate(queue, [warming]) if r.task == "pathfinder"]) == 3
    assert camp.cold == set()


def test_no_run_starts_without_time_for_it(tmp_path: Path, capsys) -> None:
    plan = small_plan(tmp_path)
    argv = ["--plan", str(plan), "--gpus", "1", "--skip-data", "--deadline-min", "1"]
    assert campaign.main(argv) == 0  # 1 min - 1.5 min margin < 2 min shortest segment
    out = capsys.readouterr().out
    assert "] start " not in out and "left 7," in out.splitlines()[-1]
    assert not (tmp_path / "runs").exists()


def test_unpacked_records_name_no_folder_of_the_machine_that_made_them(tmp_path: Path) -> None:
    machine = "/scratch/job42/repo"
    out = tmp_path / "runs"
    done = fake_record(out, "lra-listops-softmax", 0, run="s0_a")
    data = json.loads((done / "metrics.json").read_text())
    data.update(
        run_dir=f"{machine}/runs/campaign/lra-listops-softmax/s0_a",
        command=f"python {machine}/train.py paths.output_dir={machine}/runs/campaign",
    )
    data["config"]["paths"] = {"data_dir": "/elsewhere/lra/data", "output_dir": "runs/campaign"}
    (done / "metrics.json").write_text(json.dumps(data))
    (done / ".hydra").mkdir()
    (done / ".hydra" / "hydra.yaml").write_text(
        f"hydra:\n  runtime:\n    cwd: {machine}\n    output_dir: {machine}/runs/campaign/x\n"
    )
    (done / "train.log").write_text(f"Restoring states from {machine}/runs/campaign/best.ckpt\n")
    archive = tmp_path / "campaign.tar.gz"
    campaign_pack.pack(out, archive)
    results = tmp_path / "results"
    campaign_pack.unpack(archive, results)
    dest = results / "lra-listops-softmax" / "s0_a"
    texts = {p.name: p.read_text() for p in dest.rglob("*") if p.is_file()}
    assert not [name for name, text in texts.items() if machine in text or "/elsewhere" in text]
    record = json.loads(texts["metrics.json"])
    assert record["run_dir"] == "runs/campaign/lra-listops-softmax/s0_a"
    assert record["command"] == "python train.py paths.output_dir=runs/campaign"
    assert record["config"]["paths"]["data_dir"] == "lra/data"
    assert (
        "cwd: .\n" in texts["hydra.yaml"] and "from runs/campaign/best.ckpt" in texts["train.log"]
    )


def _unpacked_console(tmp_path: Path, out: Path, run: str) -> str:
    """Pack the run folders below ``out``, unpack them into ``tmp_path/results``, and read
    the console log of ``run`` (``<name>/<run>``) as unpacked."""
    archive = tmp_path / "campaign.tar.gz"
    campaign_pack.pack(out, archive)
    campaign_pack.unpack(archive, tmp_path / "results")
    return (tmp_path / "results" / run / "console.log").read_text()


def test_a_record_whose_hydra_file_is_already_portable_still_loses_its_machine_folders(
    tmp_path: Path,
) -> None:
    """The harness writes hydra.yaml portable at the end of a run; a library warning in
    console.log can still name the run's checkpoint folder absolutely (a resumed run)."""
    machine = "/work/repo"
    out = tmp_path / "runs"
    relative = {"run_dir": "runs/campaign/lra-listops-softmax/s1_b"}
    done = fake_record(out, "lra-listops-softmax", 1, run="s1_b", fields=relative)
    (done / ".hydra").mkdir()
    (done / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    cwd: .\n")
    (done / "console.log").write_text(
        f"Checkpoint directory {machine}/runs/campaign/lra-listops-softmax/s1_b/checkpoints "
        "exists and is not empty.\n"
    )
    text = _unpacked_console(tmp_path, out, "lra-listops-softmax/s1_b")
    assert text == (
        "Checkpoint directory runs/campaign/lra-listops-softmax/s1_b/checkpoints "
        "exists and is not empty.\n"
    )


def test_task_overrides_follow_the_plan_overrides(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(small_plan(tmp_path))
    listops = plan.tasks["listops"].model_copy(
        update={"overrides": ["compile=auto", "compile_mode=reduce-overhead"]}
    )
    plan = plan.model_copy(update={"tasks": {**plan.tasks, "listops": listops}})
    run = campaign_plan.planned_runs(plan, ROOT / "conf")[0]
    args = campaign.parse_args(["--extra-overrides", "x=1"])
    cmd = campaign.train_command(
        plan, run, tmp_path, resume=False, args=args, seconds=None, workers=None
    )
    assert cmd[-4:] == ["logger=csv", "compile=auto", "compile_mode=reduce-overhead", "x=1"]


def test_the_shipped_plan_compiles_pathfinder_with_cuda_graphs() -> None:
    plan = campaign_plan.load_plan(ROOT / "conf/campaign/lra.yaml")
    assert "compile_mode=reduce-overhead" in plan.tasks["pathfinder"].overrides


def test_a_warning_traceback_naming_repository_sources_loses_the_machine_root(
    tmp_path: Path,
) -> None:
    """A Dynamo warning in console.log quotes the repository's source file by absolute path;
    a library file's path stays ``<site-packages>``."""
    machine = "/work/main"
    out = tmp_path / "runs"
    relative = {"run_dir": "runs/campaign/lra-listops-mixed/s0_c"}
    done = fake_record(out, "lra-listops-mixed", 0, run="s0_c", fields=relative)
    (done / "console.log").write_text(
        "/opt/venv/lib/python3.12/site-packages/torch/_dynamo/variables/functions.py:2202: "
        "UserWarning: cache wrapper\n"
        f'  File "{machine}/spectrans/transforms/hadamard.py", line 63, in sequency\n'
        f'  File "{machine}/train.py", line 9, in <module>\n'
    )
    text = _unpacked_console(tmp_path, out, "lra-listops-mixed/s0_c")
    assert text == (
        "<site-packages>/torch/_dynamo/variables/functions.py:2202: UserWarning: cache wrapper\n"
        '  File "spectrans/transforms/hadamard.py", line 63, in sequency\n'
        '  File "train.py", line 9, in <module>\n'
    )


def test_a_variant_can_take_a_whole_gpu_where_its_task_shares(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(
        small_plan(
            tmp_path,
            tasks={
                "listops": {"seeds": 1, "ms_per_step": 60},
                "pathfinder": {
                    "seeds": 1,
                    "per_gpu": 4,
                    "per_gpu_by_variant": {"softmax": 1},
                    "ms_per_step": 6,
                },
            },
            priority=[{"task": "listops", "seeds": [0]}, {"task": "pathfinder", "seeds": [0]}],
        )
    )
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    per = {(r.task, r.variant): r.per_gpu for r in runs if r.state != "skipped"}
    assert per == {
        ("listops", "softmax"): 1,
        ("listops", "lst-mixed"): 1,
        ("pathfinder", "softmax"): 1,
        ("pathfinder", "lst-mixed"): 4,
    }
    assert campaign.sharing(plan.tasks["pathfinder"], None) == "4 (softmax 1)"
    assert campaign.sharing(plan.tasks["pathfinder"], 2) == 2
    assert campaign.sharing(plan.tasks["listops"], None) == 1
    with pytest.raises(ValueError, match="per_gpu_by_variant names unknown"):
        campaign_plan.Plan.model_validate(
            {
                **yaml.safe_load(small_plan(tmp_path).read_text()),
                "tasks": {
                    "listops": {"seeds": 2, "ms_per_step": 1, "per_gpu_by_variant": {"x": 1}},
                    "pathfinder": {"seeds": 2, "ms_per_step": 1},
                },
            }
        )
