"""Run what is missing of an LRA campaign plan on the GPUs of this machine (or through SLURM).

    python scripts/campaign.py [--plan conf/campaign/lra.yaml] [--deadline-min 9]
                               [--pack-dir $OUT] [--per-gpu N] [--dry-run]
    python scripts/campaign.py --unpack $OUT/campaign.tar.gz     # completed records -> results/runs
    python scripts/campaign.py --restore $OUT/resume.tar         # unfinished runs -> output_dir
    python scripts/campaign.py --pack-resume runs/resume.tar     # output_dir's unfinished runs

Each run is a subprocess ``python train.py experiment=lra/<preset>-<task> seed=<s>
trainer=gpu hydra.run.dir=<run folder> ...`` with ``CUDA_VISIBLE_DEVICES`` set to its GPU.
Run folders are ``<output_dir>/<preset name>/s<seed>_<time>_<id>`` (git-ignored, checkpoints
stay there). A folder with ``checkpoints/last.ckpt`` and no final record is continued with
``resume=<folder>`` (an explicit folder: ``resume=auto`` picks by name, and the seeds of one
preset share a name).

Sharing: GPU ``g`` has capacity 1; a run of a task with ``per_gpu = k`` takes ``1/k`` of it.
A variant in a task's ``gpus_by_variant`` (e.g. ``softmax: 2``) trains data-parallel on that
many whole GPUs (``trainer=ddp``, the preset's batch split evenly over them, so the effective
batch is the preset's); on a machine with fewer GPUs a fresh run takes all of them, and a
part-way run resumes only on as many GPUs as it started on.
Runs are taken in plan order (resumable ones first, those with a dead classifier head after the
fresh ones: :func:`work_queue`); a run that does not fit reserves the GPU with the most room and
later (smaller) runs fill the other GPUs. With ``--deadline-min D`` every run gets
``trainer.max_time = D - elapsed - margin`` so it stops cleanly (status ``incomplete``,
resumable) before the command's limit; ``max_time`` counts from the run's start, data loading
and checkpoint restore included. A run still alive 40 s before ``D`` is interrupted like a
Ctrl-C (it saves ``last.ckpt`` at its current step and is recorded ``interrupted``, resumable)
and terminated 20 s later if it has not exited.

After every finished run, the records of ``<output_dir>`` (metrics, Hydra config, logs, CSV
metrics; no checkpoints) and the ledger are rewritten into ``<pack-dir>/campaign.tar.gz``, and
the resumable folders of this command's runs (checkpoints included) into
``<pack-dir>/resume.tar`` while it stays under ``--resume-cap-mib``; ``--restore`` puts them
back on the next machine (``campaign_resume``). With ``--pack-dir`` and a deadline, a run that
is not expected to finish in time and whose checkpoints are expected to exceed the cap (24 bytes
per parameter of its preset's records) is not started: stopped part-way, it could not resume
elsewhere. ``--checkpoints-stay`` says that this machine keeps ``<output_dir>`` for the next
command, so such a run starts anyway and resumes there. ``--finish-within-min W`` starts only
the runs expected to end within ``W`` minutes of the command's start (a machine that keeps
``<output_dir>`` that long and no longer); the others wait in the ledger.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Container, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import campaign_plan  # noqa: E402
from campaign_gpus import GpuPool, gpu_count, physical_gpu, schedule  # noqa: E402
from campaign_pack import completed_keys, pack, record_key, unpack  # noqa: E402
from campaign_plan import (  # noqa: E402
    SIDE_CAR,
    Plan,
    PlanError,
    Run,
    ledger_lines,
    load_plan,
    mark_done,
    planned_runs,
    read_json,
    scan_records,
)
from campaign_processes import (  # noqa: E402
    interrupt_process,
    lingering,
    stop_process,
)
from campaign_resume import (  # noqa: E402
    RESUME_ARCHIVE,
    RestoreError,
    ResumePack,
    continuable,
    mib,
    pack_resume,
    restore,
)
from campaign_segments import (  # noqa: E402
    Segment,
    append_segment,
    shared_throughput,
)

from experiments.protocol import data_parallel_replicas, stale_reason  # noqa: E402
from experiments.run_record import git_commit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = "campaign.tar.gz"
TOO_LARGE = "checkpoint too large to travel"
KILL_GUARD_S = 40.0
"""A run still alive this long before the deadline is interrupted (then terminated)."""


def now_iso() -> str:
    """Current UTC time, ISO-8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    p = argparse.ArgumentParser(
        prog="python scripts/campaign.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--plan", default=str(ROOT / "conf/campaign/lra.yaml"), help="plan file")
    p.add_argument("--dry-run", action="store_true", help="print the ledger and commands only")
    p.add_argument("--gpus", type=int, default=None, help="GPUs to use (default: all found)")
    p.add_argument("--per-gpu", type=int, default=None, help="runs per GPU for every task")
    p.add_argument("--deadline-min", type=float, default=None, help="stop runs within this")
    p.add_argument("--margin-min", type=float, default=1.5, help="deadline - max_time per run")
    p.add_argument("--min-run-min", type=float, default=2.0, help="shortest segment launched")
    p.add_argument(
        "--finish-only",
        action="store_true",
        help="with --deadline-min: launch only runs expected to finish before it (for the last "
        "command on a machine whose checkpoints cannot be carried away)",
    )
    p.add_argument(
        "--finish-within-min",
        type=float,
        default=None,
        help="launch only runs expected to finish within this many minutes of this command's "
        "start (a machine that keeps its checkpoints for that long, over several commands)",
    )
    p.add_argument(
        "--finish-by",
        default=None,
        metavar="TIME",
        help="as --finish-within-min, up to a UTC wall-clock time (HH:MM today, or an ISO date "
        "and time): every command on one machine can name the same end of its lease",
    )
    p.add_argument("--pack-dir", default=None, help="write campaign.tar.gz here")
    p.add_argument(
        "--checkpoints-stay",
        action="store_true",
        help="with --pack-dir: this machine keeps output_dir for the next command, so a run "
        "whose checkpoint cannot travel may still stop at the deadline and resume here",
    )
    p.add_argument("--unpack", default=None, metavar="FILE", help="copy records to results")
    p.add_argument(
        "--restore",
        default=None,
        metavar="FILE",
        help="put the runs of a resume.tar into output_dir, then exit",
    )
    p.add_argument(
        "--pack-resume",
        default=None,
        metavar="FILE",
        help="write the resumable run folders of output_dir (--tasks/--variants) into FILE, "
        "then exit",
    )
    p.add_argument(
        "--resume-cap-mib", type=float, default=15.0, help="size cap of <pack-dir>/resume.tar"
    )
    p.add_argument("--launcher", choices=("local", "slurm"), default="local")
    p.add_argument("--slurm-jobs", type=int, default=8, help="SLURM jobs in flight")
    p.add_argument("--tasks", default=None, help="comma list: only these tasks")
    p.add_argument("--variants", default=None, help="comma list: only these variants")
    p.add_argument("--max-runs", type=int, default=None, help="launch at most this many")
    p.add_argument("--extra-overrides", default="", help="more train.py overrides (one string)")
    p.add_argument("--skip-data", action="store_true", help="do not check or build data")
    p.add_argument("--data-workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--run-workers", type=int, default=None, help="data.num_workers per run")
    args = p.parse_args(argv)
    if args.finish_only and args.deadline_min is None:
        p.error("--finish-only needs --deadline-min: without a deadline every run finishes")
    if args.finish_only and args.checkpoints_stay:
        p.error("--finish-only and --checkpoints-stay contradict: choose one")
    if args.finish_by is not None:
        if args.finish_within_min is not None:
            p.error("--finish-by and --finish-within-min both say when runs must end: choose one")
        try:
            args.finish_within_min = minutes_until(args.finish_by, datetime.now(UTC))
        except ValueError as err:
            p.error(str(err))
    if args.finish_within_min is not None and args.finish_only:
        p.error("--finish-within-min and --finish-only both say when runs must end: choose one")
    if args.finish_within_min is not None and args.finish_within_min <= 0:
        p.error(f"--finish-within-min = {args.finish_within_min} must be positive")
    for name in ("gpus", "per_gpu", "slurm_jobs", "max_runs", "run_workers"):
        value = getattr(args, name)
        if value is not None and value < (0 if name in ("gpus", "max_runs", "run_workers") else 1):
            p.error(f"--{name.replace('_', '-')} = {value} is too small")
    return args


def minutes_until(when: str, now: datetime) -> float:
    """Minutes from ``now`` to ``when``: ``HH:MM`` (UTC, today) or an ISO date and time.

    Raises:
        ValueError: ``when`` is neither, or not after ``now`` (one sentence).
    """
    try:
        if len(when) <= 5 and ":" in when:
            hours, minutes = (int(part) for part in when.split(":"))
            target = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        else:
            target = datetime.fromisoformat(when)
            if target.tzinfo is None:
                target = target.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"--finish-by {when!r} is not HH:MM (UTC) or an ISO date and time"
        ) from None
    minutes = (target - now).total_seconds() / 60
    if minutes <= 0:
        raise ValueError(f"--finish-by {when} is not after now ({now:%H:%M} UTC)")
    return minutes


def work_queue(runs: list[Run], launched: Container[tuple[str, str, int]] = ()) -> list[Run]:
    """The runs still to train: resumable, fresh, then resumable with a dead classifier head.

    A partial run needs fewer steps than a fresh one to become a record, and each one finished
    is one checkpoint fewer to keep or carry between machines. Partial runs go by the share of
    their steps still to train, the nearest to done first (ties and fresh runs in plan order).
    A partial run whose record says no unit of its head's hidden layer is live
    (``head_live_units`` 0) passes no gradient past that layer while it stays so: its steps
    move its output bias only, so it is finished (and counted) after the runs whose steps can
    still change a result.
    """
    todo = [r for r in runs if r.state in ("left", "partial") and r.key not in launched]
    partial = sorted(
        (r for r in todo if r.state == "partial"),
        key=lambda r: (r.max_steps - r.steps) / max(1, r.max_steps),
    )
    live = [r for r in partial if not r.dead_head]
    dead = [r for r in partial if r.dead_head]
    return live + [r for r in todo if r.state == "left"] + dead


def max_time(seconds: float) -> str:
    """``DD:HH:MM:SS`` for Lightning's ``max_time``."""
    s = max(1, int(seconds))  # a zero duration would stop before the first step
    return f"{s // 86400:02d}:{s % 86400 // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def sharing(task: campaign_plan.TaskPlan, override: int | None) -> int | str:
    """Runs per GPU of a task for the ledger: ``2``, or ``"2 (softmax 1)"`` with exceptions."""
    if override is not None or not task.per_gpu_by_variant:
        return override or task.per_gpu
    exceptions = ", ".join(f"{v} {n}" for v, n in sorted(task.per_gpu_by_variant.items()))
    return f"{task.per_gpu} ({exceptions})"


def resumable(run_dir: Path, max_steps: int | None) -> bool:
    """Whether ``run_dir`` holds ``checkpoints/last.ckpt`` of a run of ``max_steps`` to continue.

    Resumable: status ``incomplete`` (stopped by ``max_time``), ``running`` (killed),
    ``interrupted`` (SIGTERM or Ctrl-C), or ``failed`` when the campaign itself terminated it
    at the deadline (``campaign.json``); never a run begun under an earlier revision of its
    preset (``stale_reason``), which would not resume under the preset as it is now.
    """
    data = read_json(run_dir / "metrics.json") or {}
    steps = ((data.get("config") or {}).get("trainer") or {}).get("max_steps")
    return (
        (run_dir / "checkpoints" / "last.ckpt").is_file()
        and continuable(run_dir)
        and steps == max_steps
        and stale_reason(data) is None
    )


def resumable_dir(output_dir: Path, run: Run) -> Path | None:
    """The latest (by ``last.ckpt`` time) :func:`resumable` run folder of ``run``."""
    found = []
    for d in (output_dir / run.preset.name).glob(f"s{run.seed}_*"):
        if resumable(d, run.preset.max_steps):
            try:
                found.append(((d / "checkpoints" / "last.ckpt").stat().st_mtime, d))
            except FileNotFoundError:  # replaced meanwhile
                continue
    return max(found)[1] if found else None


@contextlib.contextmanager
def data_lock(output_dir: Path, task: str) -> Iterator[None]:
    """Hold ``<output_dir>/.data-<task>.lock`` (``flock``): one data build per task at a time.

    Campaigns started together on one machine with other ``--variants`` of the same task
    would otherwise run the same generator into the same folder at once. The kernel drops the
    lock when its holder dies.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / f".data-{task}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"data {task}: another campaign is building it; waiting", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fresh_dir(output_dir: Path, run: Run) -> Path:
    """A new run folder ``<output_dir>/<name>/s<seed>_<time>_<id>``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d_%H-%M-%S")
    return output_dir / run.preset.name / f"s{run.seed}_{stamp}_{uuid.uuid4().hex[:6]}"


def rel(path: Path) -> str:
    """``path`` relative to the repository root (the runs' working directory) when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def train_command(
    plan: Plan,
    run: Run,
    run_dir: Path,
    *,
    resume: bool,
    args: argparse.Namespace,
    seconds: float | None,
    workers: int | None,
) -> list[str]:
    """The ``train.py`` command line of one segment of ``run``.

    A run over ``run.gpus > 1`` GPUs trains data-parallel (``trainer=ddp``) with the preset's
    batch split evenly over them (``data.batch_size = batch / gpus`` per GPU), which keeps the
    effective batch and so the protocol (:func:`experiments.protocol.effective_batch`).
    """
    cmd = [sys.executable, "train.py"]
    if args.launcher == "slurm":
        cmd += ["-m", "launcher=submitit_slurm"]
        cmd += [f"hydra.sweep.dir={rel(run_dir.parent)}", f"hydra.sweep.subdir={run_dir.name}"]
    else:
        cmd += [f"hydra.run.dir={rel(run_dir)}"]
    cmd += [
        f"experiment=lra/{run.preset.path.stem}",
        f"seed={run.seed}",
        f"trainer={plan.trainer if run.gpus == 1 else 'ddp'}",
        f"paths.output_dir={rel(ROOT / plan.output_dir)}",
    ]
    if run.gpus > 1:
        per_gpu_batch = int(run.preset.batch_size or 0) // run.gpus
        cmd += [f"trainer.devices={run.gpus}", f"data.batch_size={per_gpu_batch}"]
    if resume:
        cmd.append(f"resume={rel(run_dir)}")
    if seconds is not None:
        cmd.append(f"trainer.max_time={max_time(seconds)}")
    if workers is not None:
        cmd.append(f"data.num_workers={workers}")
    task_overrides = list(plan.tasks[run.task].overrides)
    return cmd + list(plan.overrides) + task_overrides + shlex.split(args.extra_overrides)


@dataclass
class Active:
    """A segment in flight."""

    run: Run
    gpus: tuple[int, ...]
    share: Fraction
    proc: subprocess.Popen
    run_dir: Path
    started: float
    steps_before: int
    resumed: bool
    peers: int = 1  # the most segments of this command on one of ``gpus`` at once while it ran


def count_peers(active: list[Active]) -> None:
    """Raise each segment's ``peers`` to the most segments now on one of its GPUs (itself too)."""
    for a in active:
        on = max(sum(1 for b in active if g in b.gpus) for g in a.gpus)
        a.peers = max(a.peers, on)


def run_devices(record: dict) -> int:
    """GPUs a run trained on, from its record (``metrics.json``): its data-parallel replicas.

    A run resumes on as many GPUs as it started on: its per-GPU batch is the preset's batch
    divided by that count. A count that depends on the machine (``auto``) reads as 1.
    """
    return data_parallel_replicas(record.get("config") or {}) or 1


CHECKPOINT_BYTES_PER_PARAM = 24
"""Bytes per parameter in a resumable run folder: ``last.ckpt`` and the best checkpoint, each
with float32 weights and AdamW's two float32 moments (a ListOps wavelet folder: 109.2 MiB for
4.8M parameters)."""
HELD = "held until a command can finish it"
DEAD_HEAD = "head dead at its last validation (head_live_units 0): only its output bias learns"
"""Ledger note of a part-way run whose record says no unit of its classifier head is live."""

HELD_BEYOND_WINDOW = "held: not expected to finish within --finish-within-min / --finish-by"
HELD_FOR_GPUS = "held: it trains on {gpus} GPUs and this machine has {machine}"
FINISH_SAFETY = 1.2
"""Factor on a run's expected training time when deciding whether it finishes: the per-step
rates come from records made with other runs beside them and other commits (a ListOps s4d run
alone took 1.35x its rate's estimate on 2026-11-30)."""
START_OVERHEAD_S = 45.0
"""Seconds a run process spends before its first step (data, model, compilation), added to
every expected finish time."""


class Campaign:
    """State of one command: plan, runs, GPUs, ledger, packing."""

    def __init__(self, plan: Plan, args: argparse.Namespace) -> None:
        self.plan, self.args = plan, args
        self.output_dir = ROOT / plan.output_dir
        self.start = time.monotonic()
        self.commit = git_commit()
        self.data_log: list[str] = []
        self.machine_gpus: int | None = None  # set by :meth:`on_machine`
        self.cold: set[str] = set()  # tasks whose data (and data cache) was built just now
        self.events: list[str] = []
        runs = planned_runs(plan, ROOT / "conf")
        keep_t = set(args.tasks.split(",")) if args.tasks else None
        keep_v = set(args.variants.split(",")) if args.variants else None
        for flag, keep, known in (
            ("--tasks", keep_t, set(plan.tasks)),
            ("--variants", keep_v, {v.name for v in plan.variants}),
        ):
            if keep is not None and not keep <= known:
                raise PlanError(
                    f"{flag} names {sorted(keep - known)}, not in the plan; "
                    f"choose from {sorted(known)}"
                )
        self.runs = [
            r
            for r in runs
            if (keep_t is None or r.task in keep_t) and (keep_v is None or r.variant in keep_v)
        ]
        if args.per_gpu is not None:
            for r in self.runs:
                if r.gpus == 1:  # a multi-GPU run takes its GPUs whole
                    r.per_gpu = args.per_gpu
        if args.launcher == "slurm":
            for r in self.runs:
                r.per_gpu, r.gpus = 1, 1
        self.planned_gpus = {r.key: r.gpus for r in self.runs}
        self.refresh()

    def on_machine(self, gpus: int) -> None:
        """Fit the runs to a machine of ``gpus`` GPUs: a fresh run takes at most all of them.

        A run planned on more GPUs than the machine has trains on as many of them as split its
        preset's batch evenly (:func:`campaign_plan.gpus_on`; its per-GPU batch grows to
        match); a part-way run keeps the count it started with (:func:`run_devices`) and waits
        for a machine that has it.
        """
        self.machine_gpus = max(1, gpus)
        self.refresh()

    def refresh(self) -> None:
        """Re-read records: done / failed / partial (resumable here)."""
        self.records = scan_records([ROOT / self.plan.results_dir, self.output_dir])
        for r in self.runs:
            if r.state in ("done", "failed", "partial", "left"):
                r.state, r.note, r.gpu_seconds, r.dead_head = "left", "", 0.0, False
        mark_done([r for r in self.runs if r.state != "running"], self.records)
        self.rates, _ = campaign_plan.ms_per_step(self.runs, self.records, self.plan)
        self.step_rates, _ = campaign_plan.ms_per_step(
            self.runs, self.records, self.plan, START_OVERHEAD_S
        )
        for r in self.runs:
            if r.state == "running":
                continue
            r.gpus = self.planned_gpus[r.key]
            if self.machine_gpus is not None:
                r.gpus = campaign_plan.gpus_on(r.gpus, self.machine_gpus, r.preset.batch_size)
            if r.state == "left":
                d = resumable_dir(self.output_dir, r)
                if d is not None:
                    data = read_json(d / "metrics.json") or {}
                    r.gpus = run_devices(data)
                    r.state, r.steps = "partial", int(data.get("steps") or 0)
                    wall = float(data.get("wall_time_s") or 0.0)
                    r.gpu_seconds = campaign_plan.gpu_seconds_of(d, wall)
                    r.note = f"resumable from {d.relative_to(self.output_dir)}"
                    if data.get("head_live_units") == 0:
                        r.dead_head = True
                        r.add_note(DEAD_HEAD)

    def finishes(self, run: Run, seconds: float) -> bool:
        """Whether ``run`` is expected to reach its last step within ``seconds`` of wall time.

        Expected wall time = :data:`START_OVERHEAD_S` + :data:`FINISH_SAFETY` x steps left x
        GPU-ms per step with each recorded segment's start-up taken out
        (:func:`campaign_plan.ms_per_step` with ``START_OVERHEAD_S``: the median over the
        variant's records, else the plan's figure) x the runs sharing its GPU / the GPUs it
        trains on (perfect data-parallel scaling; :data:`FINISH_SAFETY` is the margin).
        """
        steps_left = max(0, run.max_steps - run.steps)
        rate = self.step_rates[(run.task, run.variant)]
        training = steps_left * rate * run.per_gpu / run.gpus / 1000
        return START_OVERHEAD_S + FINISH_SAFETY * training <= seconds

    def checkpoint_mib(self, run: Run) -> float | None:
        """Expected size of ``run``'s resumable checkpoint in MiB, or None when unknown.

        ``CHECKPOINT_BYTES_PER_PARAM`` bytes per parameter (two checkpoints of float32 weights
        and AdamW's two float32 moments), for the largest ``num_params`` among its preset's
        records.
        """
        params = [
            int(r.data["num_params"])
            for r in self.records
            if r.name == run.preset.name and r.data.get("num_params")
        ]
        return CHECKPOINT_BYTES_PER_PARAM * max(params) / 2**20 if params else None

    def stays_resumable(self, run: Run) -> bool:
        """Whether ``run``, stopped at the deadline, could resume in a later command.

        Without ``--pack-dir`` (or with ``--checkpoints-stay``) its checkpoint stays in the
        output folder for the next command on this machine; otherwise the checkpoint has to
        travel in ``resume.tar``, so its expected size (unknown counts as fitting) must stay
        under ``--resume-cap-mib``.
        """
        if not self.args.pack_dir or self.args.checkpoints_stay:
            return True
        size = self.checkpoint_mib(run)
        return size is None or size <= self.args.resume_cap_mib

    def launchable(self, queue: list[Run]) -> list[Run]:
        """``queue`` less the runs that would not finish before the deadline and may not stop.

        Under ``--finish-only`` no run may stop part-way; otherwise a run may when its
        checkpoint can resume later (:meth:`stays_resumable`), and one that cannot waits
        for a command with time to finish it (a note in the ledger says so). Under
        ``--finish-within-min`` a run starts only when it is expected to end within that
        window (less the margin), whatever this command's deadline.
        """
        left = self.deadline_left()
        window = self.seconds_left(self.args.finish_within_min)
        keep = []
        margin = 60 * self.args.margin_min
        for run in queue:
            if self.machine_gpus is not None and run.gpus > self.machine_gpus:
                run.add_note(HELD_FOR_GPUS.format(gpus=run.gpus, machine=self.machine_gpus))
                continue
            if left is None and window is None:
                keep.append(run)
                continue
            if window is not None and not self.finishes(run, window - margin):
                run.add_note(HELD_BEYOND_WINDOW)
                continue
            if left is None or self.finishes(run, left - margin):
                keep.append(run)
            elif not self.args.finish_only:
                if self.stays_resumable(run):
                    keep.append(run)
                elif HELD not in run.note:
                    size = self.checkpoint_mib(run) or 0.0
                    run.add_note(f"{HELD}: its checkpoint (~{size:.0f} MiB) cannot travel")
        return keep

    def seconds_left(self, minutes: float | None) -> float | None:
        """Seconds left of ``minutes`` counted from this command's start (None: no limit)."""
        if minutes is None:
            return None
        return 60 * minutes - (time.monotonic() - self.start)

    def deadline_left(self) -> float | None:
        """Seconds left before ``--deadline-min``, or None without one."""
        return self.seconds_left(self.args.deadline_min)

    def header(self, gpus: int) -> str:
        """First ledger line: time, GPUs, sharing, deadline."""
        per = {t: sharing(p, self.args.per_gpu) for t, p in self.plan.tasks.items()}
        dl = f"{self.args.deadline_min} min" if self.args.deadline_min else "none"
        return (
            f"campaign {self.plan.name} at {now_iso()}: {gpus} GPU(s) ({self.args.launcher}), "
            f"runs per GPU {per}, deadline {dl}, elapsed {time.monotonic() - self.start:.0f} s"
        )

    def ledger(self, gpus: int, events: bool = True) -> str:
        """The ledger table, data lines and (with ``events``) this command's events."""
        lines = list(ledger_lines(self.runs, self.plan, self.records, self.header(gpus)))
        return "\n".join(lines + self.data_log + (self.events if events else [])) + "\n"

    def pack(self, gpus: int) -> None:
        """Rewrite both archives (no-op without ``--pack-dir``).

        ``resume.tar`` holds the resumable folders of this command's runs only (plan order),
        so commands sharing ``output_dir`` with other ``--tasks``/``--variants`` never carry
        each other's runs; ``campaign.tar.gz`` holds every record of ``output_dir``.
        """
        if not self.args.pack_dir:
            return
        self.pack_resume()
        archive = Path(self.args.pack_dir) / ARCHIVE
        text = self.ledger(gpus)
        size = pack(self.output_dir, archive, {"ledger.txt": text})
        if size > 15 * 2**20:
            print(f"warning: {archive} is {size / 2**20:.1f} MiB (limit 16)", file=sys.stderr)

    def pack_resume(self, archive: Path | None = None) -> ResumePack:
        """Write ``<pack-dir>/resume.tar`` (or ``archive``); note the runs too large for it."""
        dirs: dict[Path, Run] = {}
        for run in self.runs:
            run.note = run.note.split(TOO_LARGE)[0].rstrip("; ")
            if run.state in ("partial", "running"):
                d = resumable_dir(self.output_dir, run)
                if d is not None:
                    dirs[d] = run
        cap = int(self.args.resume_cap_mib * 2**20)
        if archive is None:
            archive = Path(self.args.pack_dir) / RESUME_ARCHIVE
        out = pack_resume(self.output_dir, list(dirs), archive, cap)
        for d, run in dirs.items():
            size = out.too_large.get(d.relative_to(self.output_dir).as_posix())
            if size is not None:
                run.add_note(f"{TOO_LARGE} ({mib(size)})")
        return out

    def ensure_data(self) -> None:
        """Build every task's data that the runs left need; log how long it took."""
        tasks = {r.task for r in self.runs if r.state in ("left", "partial")}
        for name in sorted(tasks):
            spec = self.plan.tasks[name].data
            if spec is None:
                continue
            if spec.is_ready(ROOT):
                self.data_log.append(f"data {name}: ready ({', '.join(spec.ready)})")
                continue
            with data_lock(self.output_dir, name):
                if spec.is_ready(ROOT):  # another campaign built it while this one waited
                    self.data_log.append(f"data {name}: ready (built by another campaign)")
                    continue
                self.build_data(name, spec)

    def build_data(self, name: str, spec: campaign_plan.DataSpec) -> None:
        """Run the data command of task ``name``; log it; raise if it fails."""
        self.cold.add(name)
        cmd = [sys.executable, *spec.command, "--workers", str(self.args.data_workers)]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        secs = time.monotonic() - t0
        tail = (proc.stdout.strip().splitlines() or [""])[-1]
        line = (
            f"data {name}: `{shlex.join(cmd[1:])}` rc={proc.returncode} in {secs:.0f} s "
            f"({self.args.data_workers} workers): {tail}"
        )
        self.data_log.append(line)
        print(line, flush=True)
        if proc.returncode != 0:
            raise RuntimeError(f"data for {name} failed: {proc.stderr.strip()[-500:]}")

    def workers_per_run(self, gpus: int, per_gpu: int) -> int | None:
        """``data.num_workers`` of a run: the CPUs split over concurrent runs, minus one."""
        if self.args.run_workers is not None:
            return self.args.run_workers
        if self.args.launcher == "slurm":
            return None  # the preset's value: the cluster node's CPUs are not ours to count
        cpus = os.cpu_count() or 1
        return max(1, cpus // max(1, gpus * per_gpu) - 1)

    def launch(self, run: Run, on: tuple[int, ...], gpus: int) -> Active:
        """Start one segment of ``run`` on the GPUs ``on`` (of ``gpus`` in the machine)."""
        old = resumable_dir(self.output_dir, run)
        earlier = any((self.output_dir / run.preset.name).glob(f"s{run.seed}_*"))
        run_dir = old or fresh_dir(self.output_dir, run)
        run_dir.mkdir(parents=True, exist_ok=True)
        left = self.deadline_left()
        seconds = None if left is None else left - 60 * self.args.margin_min
        cmd = train_command(
            self.plan,
            run,
            run_dir,
            resume=old is not None,
            args=self.args,
            seconds=seconds,
            workers=self.workers_per_run(gpus, run.per_gpu),
        )
        env = dict(os.environ)
        if self.args.launcher == "local":
            env["CUDA_VISIBLE_DEVICES"] = ",".join(physical_gpu(g) for g in on)
        log = open(run_dir / "console.log", "a")  # noqa: SIM115 - closed when the run ends
        log.write(f"# {now_iso()} {shlex.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        steps = run.steps if old is not None else 0
        how = f"resumed at step {steps}" if old else "fresh start"
        if old is None and earlier:
            how = "restart (no resumable checkpoint in the earlier folder)"
        append_segment(
            run_dir,
            run,
            {
                "started_at": now_iso(),
                "gpu": on[0],
                "gpus": list(on),
                "per_gpu": run.per_gpu,
                "git_commit": self.commit,
                "resumed": bool(old),
                "steps_before": steps,
                "max_time": None if seconds is None else max_time(seconds),
            },
        )
        where = f"GPU {on[0]}" if len(on) == 1 else f"GPUs {','.join(map(str, on))} (DDP)"
        self.event(f"start {run.label} on {where} ({how}): {run_dir}")
        run.state = "running"
        return Active(
            run, on, Fraction(1, run.per_gpu), proc, run_dir, time.monotonic(), steps, bool(old)
        )

    def event(self, line: str) -> None:
        """Print and keep a time-stamped event line."""
        stamped = f"[{time.monotonic() - self.start:6.0f} s] {line}"
        self.events.append(stamped)
        print(stamped, flush=True)

    def finish(self, a: Active, killed: bool) -> None:
        """Close a segment: side car, state, event line."""
        wall = time.monotonic() - a.started
        data = read_json(a.run_dir / "metrics.json") or {}
        status = data.get("status", "missing")
        steps = int(data.get("steps") or a.steps_before)
        append_segment(
            a.run_dir,
            a.run,
            {
                "started_at": (read_json(a.run_dir / SIDE_CAR) or {"segments": [{}]})["segments"][
                    -1
                ].get("started_at"),
                "ended_at": now_iso(),
                "wall_s": round(wall, 1),
                "rc": a.proc.returncode,
                "killed": killed,
                "status": status,
                "steps_after": steps,
                "runs_on_gpu": a.peers,
            },
        )
        rate = (steps - a.steps_before) / wall if wall > 0 else 0.0
        self.throughput.setdefault(a.run.task, []).extend(
            Segment(g, a.started, a.started + wall, (steps - a.steps_before) / len(a.gpus))
            for g in a.gpus
        )
        a.run.state = "left"
        self.event(
            f"end {a.run.label}: {status}{' (terminated at the deadline)' if killed else ''}, "
            f"rc {a.proc.returncode}, steps {a.steps_before}->{steps}, {wall:.0f} s, "
            f"{rate:.1f} steps/s, test_acc {data.get('test_acc')}"
        )

    def gate(self, queue: list[Run], active: list[Active]) -> list[Run]:
        """Hold back runs of a task whose data was just built until one of its runs trains.

        The first run of such a task builds the data cache; the others start once it has
        logged or checkpointed (so they read the cache instead of building it again).
        """
        for a in active:
            if a.run.task in self.cold and (
                (a.run_dir / "csv" / "metrics.csv").is_file()
                or any((a.run_dir / "checkpoints").glob("*.ckpt"))
            ):
                self.cold.discard(a.run.task)
        out, first = [], set()
        for run in queue:
            if run.task in self.cold:
                if run.task in first or any(a.run.task == run.task for a in active):
                    continue
                first.add(run.task)
            out.append(run)
        return out

    def execute(self, gpus: int) -> int:
        """Run the queue until done, the deadline, or ``--max-runs``; returns an exit code."""
        pool = GpuPool(gpus)
        active: list[Active] = []
        launched = 0
        self.throughput: dict[str, list[Segment]] = {}
        self.launched: set[tuple[str, str, int]] = set()
        stop_launching = False
        while True:
            queue = self.launchable(work_queue(self.runs, self.launched))
            left = self.deadline_left()
            if left is not None and left - 60 * self.args.margin_min < 60 * self.args.min_run_min:
                stop_launching = True
            if not stop_launching:
                room = None if self.args.max_runs is None else self.args.max_runs - launched
                for run, on in schedule(self.gate(queue, active), pool, room):
                    active.append(self.launch(run, on, gpus))
                    self.launched.add(run.key)
                    launched += 1
                count_peers(active)
            if not active:
                break
            time.sleep(1.0)
            left = self.deadline_left()
            for a in list(active):
                killed = False
                if a.proc.poll() is None and left is not None and left < KILL_GUARD_S:
                    interrupt_process(a.proc)
                    killed = True
                elif a.proc.poll() is None and lingering(a.run_dir):
                    self.event(f"{a.run.label}: record final, process still alive; stopping it")
                    stop_process(a.proc)
                if a.proc.poll() is None:
                    continue
                active.remove(a)
                self.cold.discard(a.run.task)
                for g in a.gpus:
                    pool.give(g, a.share)
                self.finish(a, killed)
                self.refresh()
                self.pack(gpus)
        for task, segments in sorted(self.throughput.items()):
            gpus_used = len({s.gpu for s in segments})
            self.event(
                f"throughput {task}: {shared_throughput(segments):.1f} steps/s per busy GPU "
                f"({round(sum(s.steps for s in segments))} steps in {len(segments)} segment(s) on "
                f"{gpus_used} GPU(s))"
            )
        return 0


def _unpack(archive: str, plan: Plan) -> int:
    """``--unpack``: copy the archive's completed records into the plan's results folder."""
    if not Path(archive).is_file():
        print(f"error: --unpack {archive} is not a file", file=sys.stderr)
        return 2
    copied, messages = unpack(Path(archive), ROOT / plan.results_dir)
    for line in [f"copied {c}" for c in copied] + messages:
        print(line)
    return 0


def _restore(archive: str, plan: Plan) -> int:
    """``--restore``: put the run folders of a ``resume.tar`` into the plan's ``output_dir``."""
    if not Path(archive).is_file():
        print(f"error: --restore {archive} is not a file", file=sys.stderr)
        return 2
    output_dir = ROOT / plan.output_dir
    done = completed_keys(ROOT / plan.results_dir) | completed_keys(output_dir)
    try:
        restored, messages = restore(Path(archive), output_dir, done, record_key)
    except RestoreError as err:
        print(f"error: --restore {archive}: {err}", file=sys.stderr)
        return 2
    for line in [f"restored {r}" for r in restored] + messages:
        print(line)
    print(f"{len(restored)} run folder(s) restored into {rel(output_dir)}")
    return 0


def _pack_resume(campaign: Campaign, archive: str) -> int:
    """``--pack-resume``: the resumable run folders of ``output_dir`` into one archive.

    The archive is what ``--restore`` reads, so unfinished runs gathered here from several
    machines' archives travel to the next machine as one file.
    """
    out = campaign.pack_resume(Path(archive))
    for name in out.packed:
        print(f"packed {name}")
    for name, size in out.too_large.items():
        print(f"left out {name}: {mib(size)}, over --resume-cap-mib")
    print(f"{len(out.packed)} run folder(s) in {archive} ({mib(out.size)})")
    return 0


def _dry_run(campaign: Campaign, plan: Plan, args: argparse.Namespace, gpus: int) -> int:
    """``--dry-run``: print the ledger and the commands of the first wave."""
    queue = campaign.launchable(work_queue(campaign.runs))  # notes the runs it holds back
    print(campaign.ledger(gpus), end="")
    pool = GpuPool(max(gpus, 1))
    print(f"first wave on {max(gpus, 1)} GPU(s) (then the next runs as these end):")
    for run, on in schedule(queue, pool, args.max_runs):
        old = resumable_dir(campaign.output_dir, run)
        left = campaign.deadline_left()
        seconds = None if left is None else left - 60 * args.margin_min
        cmd = train_command(
            plan,
            run,
            old or campaign.output_dir / run.preset.name / f"s{run.seed}_<new>",
            resume=old is not None,
            args=args,
            seconds=seconds,
            workers=campaign.workers_per_run(max(gpus, 1), run.per_gpu),
        )
        visible = ",".join(physical_gpu(g) for g in on)
        prefix = f"CUDA_VISIBLE_DEVICES={visible} " if args.launcher == "local" else ""
        print(prefix + shlex.join(["python", *cmd[1:]]))
    return 0


def _run(campaign: Campaign, args: argparse.Namespace, gpus: int) -> int:
    """Prepare the data, run every run left and keep the ledger and the archive current."""
    if (
        gpus == 0
        and "trainer.accelerator=cpu" not in args.extra_overrides
        and ("debug=" not in args.extra_overrides)
    ):
        print(
            "error: no CUDA device found; pass --gpus N with CPU overrides "
            "(--extra-overrides 'debug=default') or run on a GPU machine",
            file=sys.stderr,
        )
        return 2
    print(campaign.ledger(gpus), end="", flush=True)
    if not args.skip_data:
        campaign.ensure_data()
    campaign.pack(gpus)
    rc = campaign.execute(max(gpus, 1))
    campaign.refresh()
    campaign.pack(gpus)
    print(campaign.ledger(gpus, events=False), end="")
    return rc


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input)."""
    args = parse_args(argv)
    try:
        plan = load_plan(args.plan)
    except PlanError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.unpack:
        return _unpack(args.unpack, plan)
    if args.restore:
        return _restore(args.restore, plan)
    try:
        campaign = Campaign(plan, args)
    except PlanError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    gpus = args.gpus if args.gpus is not None else gpu_count()
    if args.launcher == "slurm":
        gpus = args.slurm_jobs
    if args.pack_resume:
        return _pack_resume(campaign, args.pack_resume)
    campaign.on_machine(gpus)
    if args.dry_run:
        return _dry_run(campaign, plan, args, gpus)
    return _run(campaign, args, gpus)


if __name__ == "__main__":
    sys.exit(main())
