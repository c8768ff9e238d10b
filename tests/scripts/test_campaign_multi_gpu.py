"""scripts/campaign.py: runs that train data-parallel over several GPUs (``gpus_by_variant``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import campaign  # noqa: E402
import campaign_plan  # noqa: E402

from experiments import protocol  # noqa: E402
from tests.scripts.test_campaign import fake_record, small_plan  # noqa: E402

SOFTMAX_PF = "lra-pathfinder-softmax"
PF_STEPS = 62400


def _plan(tmp_path: Path, gpus: dict[str, int]) -> Path:
    """Pathfinder softmax and lst-mixed, seed 0; ``gpus`` is ``gpus_by_variant``."""
    return small_plan(
        tmp_path,
        tasks={
            "pathfinder": {
                "seeds": 1,
                "per_gpu": 3,
                "gpus_by_variant": gpus,
                "ms_per_step": 8,
            }
        },
        variants=[{"name": "softmax"}, {"name": "lst-mixed", "preset": "mixed"}],
        priority=[{"task": "pathfinder", "seeds": [0]}],
    )


def _dry_run(plan: Path, gpus: int, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The first-wave commands of ``--dry-run`` on a machine of ``gpus`` GPUs."""
    assert campaign.main(["--plan", str(plan), "--dry-run", "--gpus", str(gpus)]) == 0
    out = capsys.readouterr().out
    return [line for line in out.splitlines() if line.startswith("CUDA_VISIBLE_DEVICES")]


def test_the_plan_gives_a_variant_several_whole_gpus(tmp_path: Path) -> None:
    plan = campaign_plan.load_plan(_plan(tmp_path, {"softmax": 2}))
    runs = {r.variant: r for r in campaign_plan.planned_runs(plan, ROOT / "conf")}
    assert (runs["softmax"].gpus, runs["softmax"].per_gpu) == (2, 1)
    assert (runs["lst-mixed"].gpus, runs["lst-mixed"].per_gpu) == (1, 3)
    assert runs["softmax"].preset.batch_size == 512


@pytest.mark.parametrize(
    ("planned", "machine", "batch", "gpus"),
    [
        (2, 2, 512, 2),
        (2, 8, 512, 2),
        (2, 1, 512, 1),
        (4, 3, 512, 2),
        (4, 3, 30, 3),
        (2, 2, None, 1),
    ],
)
def test_a_fresh_run_takes_the_most_gpus_that_split_its_batch(planned, machine, batch, gpus):
    assert campaign_plan.gpus_on(planned, machine, batch) == gpus


def test_per_gpu_on_the_command_line_leaves_a_multi_gpu_run_whole(tmp_path: Path) -> None:
    argv = ["--plan", str(_plan(tmp_path, {"softmax": 2})), "--per-gpu", "4"]
    args = campaign.parse_args(argv)
    runner = campaign.Campaign(campaign_plan.load_plan(args.plan), args)
    runner.on_machine(2)
    per = {r.variant: (r.gpus, r.per_gpu) for r in runner.runs}
    assert per == {"softmax": (2, 1), "lst-mixed": (1, 4)}


def test_a_gpu_count_that_does_not_split_the_batch_is_refused(tmp_path: Path, capsys) -> None:
    rc = campaign.main(["--plan", str(_plan(tmp_path, {"softmax": 3})), "--dry-run"])
    err = capsys.readouterr().err
    assert rc == 2 and "data.batch_size 512 does not split into 3 equal" in err
    assert "Traceback" not in err


def test_unknown_variant_in_gpus_by_variant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(campaign_plan.PlanError, match="gpus_by_variant names unknown"):
        campaign_plan.load_plan(_plan(tmp_path, {"nope": 2}))


def test_on_two_gpus_the_run_is_data_parallel_with_the_batch_split(tmp_path, capsys) -> None:
    (cmd,) = _dry_run(_plan(tmp_path, {"softmax": 2}), 2, capsys)
    words = cmd.split()
    assert words[0] == "CUDA_VISIBLE_DEVICES=0,1"
    assert {"trainer=ddp", "trainer.devices=2", "data.batch_size=256"} <= set(words)
    assert "trainer=gpu" not in words


def test_on_one_gpu_the_same_run_trains_with_the_preset_batch(tmp_path, capsys) -> None:
    cmds = _dry_run(_plan(tmp_path, {"softmax": 2}), 1, capsys)
    softmax = next(c for c in cmds if "softmax-pathfinder" in c).split()
    assert softmax[0] == "CUDA_VISIBLE_DEVICES=0" and "trainer=gpu" in softmax
    assert not any(w.startswith(("data.batch_size", "trainer.devices")) for w in softmax)


def test_the_data_parallel_command_is_a_protocol_run() -> None:
    base = ["experiment=lra/softmax-pathfinder", "trainer=ddp", "trainer.devices=2"]
    split = protocol._compose([*base, "data.batch_size=256"])
    assert protocol.classify(split, experiment_choice="lra/softmax-pathfinder")[0] == "lra"
    doubled = protocol._compose([*base, "data.batch_size=512"])
    kind, why = protocol.classify(doubled, experiment_choice="lra/softmax-pathfinder")
    assert kind == "custom", why


def _part_way(tmp_path: Path, devices: int) -> Path:
    """A resumable softmax run folder in the plan's output_dir, trained on ``devices`` GPUs."""
    run_dir = fake_record(
        tmp_path / "runs",
        SOFTMAX_PF,
        0,
        status="incomplete",
        max_steps=PF_STEPS,
        steps=1000,
        run="s0_part",
        fields={
            "config": {
                "name": SOFTMAX_PF,
                "seed": 0,
                "trainer": {"max_steps": PF_STEPS, "devices": devices},
            }
        },
    )
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"x")
    return run_dir


def test_a_part_way_run_resumes_on_the_gpu_count_it_started_with(tmp_path, capsys) -> None:
    plan = _plan(tmp_path, {"softmax": 2})
    _part_way(tmp_path, devices=2)
    assert campaign.main(["--plan", str(plan), "--dry-run", "--gpus", "1"]) == 0
    out = capsys.readouterr().out
    assert "held: it trains on 2 GPUs and this machine has 1" in out
    assert not any("softmax-pathfinder" in line for line in out.splitlines() if "resume=" in line)
    (cmd,) = _dry_run(plan, 2, capsys)
    assert "resume=" in cmd and "trainer.devices=2" in cmd and "data.batch_size=256" in cmd


def test_a_run_begun_on_one_gpu_resumes_on_one(tmp_path, capsys) -> None:
    plan = _plan(tmp_path, {"softmax": 2})
    _part_way(tmp_path, devices=1)
    cmds = _dry_run(plan, 2, capsys)
    softmax = next(c for c in cmds if "softmax-pathfinder" in c).split()
    assert "trainer=gpu" in softmax and softmax[0] in (
        "CUDA_VISIBLE_DEVICES=0",
        "CUDA_VISIBLE_DEVICES=1",
    )
    assert not any(w.startswith("trainer.devices") for w in softmax)


def test_a_segment_on_two_gpus_counts_twice_the_gpu_seconds(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    segments = [
        {"wall_s": 100.0, "per_gpu": 1, "gpu": 0, "gpus": [0, 1]},
        {"wall_s": 50.0, "per_gpu": 2, "gpu": 1},  # written before segments listed their GPUs
    ]
    (run_dir / campaign_plan.SIDE_CAR).write_text(json.dumps({"segments": segments}))
    assert campaign_plan.gpu_seconds_of(run_dir, 150.0) == pytest.approx(200.0 + 25.0)


class _Proc:
    """Stands in for a training process: records how it was started."""

    started: list[tuple[list[str], dict[str, str]]] = []

    def __init__(self, cmd: list[str], env: dict[str, str], **_: object) -> None:
        _Proc.started.append((cmd, env))

    def poll(self) -> int:
        return 0


def test_launch_hands_the_run_both_gpus_and_records_them(tmp_path, monkeypatch) -> None:
    args = campaign.parse_args(["--plan", str(_plan(tmp_path, {"softmax": 2})), "--gpus", "2"])
    runner = campaign.Campaign(campaign_plan.load_plan(args.plan), args)
    runner.on_machine(2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    monkeypatch.setattr(campaign.subprocess, "Popen", _Proc)
    run = next(r for r in runner.runs if r.variant == "softmax")
    active = runner.launch(run, (0, 1), 2)
    cmd, env = _Proc.started[-1]
    assert env["CUDA_VISIBLE_DEVICES"] == "2,5"  # the machine's GPUs behind the campaign's 0, 1
    assert "trainer.devices=2" in cmd and active.gpus == (0, 1)
    side = json.loads((active.run_dir / campaign_plan.SIDE_CAR).read_text())
    assert side["segments"][0]["gpus"] == [0, 1] and side["segments"][0]["gpu"] == 0
    campaign.count_peers([active])
    assert active.peers == 1


def test_the_shipped_plan_trains_pathfinder_softmax_on_two_gpus() -> None:
    raw = yaml.safe_load((ROOT / "conf" / "campaign" / "lra.yaml").read_text())
    assert raw["tasks"]["pathfinder"]["gpus_by_variant"] == {"softmax": 2}
    plan = campaign_plan.load_plan(ROOT / "conf" / "campaign" / "lra.yaml")
    runs = campaign_plan.planned_runs(plan, ROOT / "conf")
    wide = {(r.task, r.variant) for r in runs if r.gpus > 1}
    assert wide == {("pathfinder", "softmax")}


def test_a_data_parallel_run_through_the_script_on_two_cpu_processes(tmp_path, capsys) -> None:
    """A debug-sized ListOps softmax run over two gloo processes: record, ranks, side car."""
    plan = small_plan(
        tmp_path,
        tasks={"listops": {"seeds": 1, "ms_per_step": 60, "gpus_by_variant": {"softmax": 2}}},
        variants=[{"name": "softmax"}],
        priority=[{"task": "listops", "seeds": [0]}],
    )
    extra = (
        "debug=default trainer.accelerator=cpu trainer.strategy=ddp trainer.precision=32-true "
        f"paths.data_dir={tmp_path / 'data'}"
    )
    argv = ["--plan", str(plan), "--gpus", "2", "--skip-data", "--run-workers", "0"]
    assert campaign.main([*argv, "--extra-overrides", extra]) == 0
    out = capsys.readouterr().out
    assert "start listops/softmax/seed0 on GPUs 0,1 (DDP)" in out
    assert "end listops/softmax/seed0: completed, rc 0" in out
    (run_dir,) = (tmp_path / "runs" / "lra-listops-softmax").iterdir()
    config = json.loads((run_dir / "metrics.json").read_text())["config"]
    assert config["trainer"]["devices"] == 2 and config["trainer"]["strategy"] == "ddp"
    assert config["data"]["batch_size"] == 16  # the preset's 32 over two processes
    assert (run_dir / "train_ddp_process_1.log").exists()  # the second rank ran
    side = json.loads((run_dir / campaign_plan.SIDE_CAR).read_text())
    assert side["segments"][0]["gpus"] == [0, 1]
    assert campaign.run_devices(json.loads((run_dir / "metrics.json").read_text())) == 2
