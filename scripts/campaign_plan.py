"""The campaign plan (``conf/campaign/*.yaml``), its runs, what is done, and the ledger.

A plan is tasks x variants x seeds. Run ``(task, variant, seed)`` trains
``experiment=lra/<preset>-<task> seed=<seed>``; it is *done* when a ``metrics.json`` exists with
``status: completed``, ``config.name`` equal to the preset's ``name``, ``config.seed`` equal to
the seed and ``config.trainer.max_steps`` equal to the preset's ``trainer.max_steps`` (so a
shortened or debug run of the same preset never counts).

GPU time: a segment of wall time ``w`` run with ``k`` runs sharing one GPU costs ``w / k``
GPU-seconds. A run's GPU-milliseconds per step is measured as
``sum(w_i / k_i) / steps`` over its segments (``campaign.json``), else ``wall_time_s / steps``;
the estimate left is ``sum over runs (max_steps - steps_done) * ms_per_step``, with the
variant's measured figure where one exists and the task's planned ``ms_per_step`` otherwise.
"""

from __future__ import annotations

import glob
import json
import statistics
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from experiments.protocol import stale_reason  # noqa: E402

SIDE_CAR = "campaign.json"
"""Per run folder: the campaign's segments of that run (GPU, sharing, wall time, steps)."""


class PlanError(ValueError):
    """A plan that cannot be used; the message is one sentence."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    """How to make a task's data: ``python <command> --workers N`` unless it is ready.

    Ready: every glob pattern of ``ready`` (relative to the repository root) matches at least
    its count of files.
    """

    command: list[str] = Field(min_length=1)
    ready: dict[str, int] = Field(min_length=1)

    def is_ready(self, root: Path) -> bool:
        """Whether the data below ``root`` is complete."""
        return all(len(glob.glob(str(root / p))) >= n for p, n in self.ready.items())


class TaskPlan(_Strict):
    """One task of the plan."""

    data: DataSpec | None = None
    seeds: int = Field(ge=1)
    seeds_by_variant: dict[str, int] = {}
    per_gpu: int = Field(default=1, ge=1)
    per_gpu_by_variant: dict[str, int] = {}
    """Runs per GPU of a variant whose step keeps the GPU busier (e.g. softmax: 1)."""
    gpus_by_variant: dict[str, int] = {}
    """GPUs one run of a variant trains on, data-parallel (DDP), where the machine has them
    (e.g. softmax: 2). Each GPU takes ``batch / gpus`` of the preset's batch, so the effective
    batch, and with it the protocol, stays the preset's; the run takes those GPUs whole."""
    ms_per_step: float = Field(gt=0)
    overrides: list[str] = []
    """train.py overrides of this task's runs (after the plan's), e.g. how to compile."""

    def seeds_of(self, variant: str) -> int:
        """Number of seeds of ``variant`` on this task."""
        return self.seeds_by_variant.get(variant, self.seeds)

    def per_gpu_of(self, variant: str) -> int:
        """How many runs of ``variant`` share one GPU on this task (1 for a multi-GPU run)."""
        if self.gpus_of(variant) > 1:
            return 1
        return self.per_gpu_by_variant.get(variant, self.per_gpu)

    def gpus_of(self, variant: str) -> int:
        """How many GPUs one run of ``variant`` asks for on this task."""
        return self.gpus_by_variant.get(variant, 1)


class VariantPlan(_Strict):
    """A variant; ``preset`` names ``conf/experiment/lra/<preset>-<task>.yaml``."""

    name: str = Field(min_length=1)
    preset: str | None = None

    @property
    def preset_name(self) -> str:
        """The preset's variant part."""
        return self.preset or self.name


class Round(_Strict):
    """A priority round: these seeds of every variant on ``task``."""

    task: str
    seeds: list[int] = Field(min_length=1)


class Plan(_Strict):
    """A campaign plan."""

    name: str = "campaign"
    output_dir: str = "runs/campaign"
    results_dir: str = "results/runs"
    trainer: str = "gpu"
    overrides: list[str] = []
    tasks: dict[str, TaskPlan] = Field(min_length=1)
    variants: list[VariantPlan] = Field(min_length=1)
    priority: list[Round] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant(s) {dupes} are listed twice")
        for task_name, task in self.tasks.items():
            for key in ("seeds_by_variant", "per_gpu_by_variant", "gpus_by_variant"):
                counts = getattr(task, key)
                unknown = sorted(set(counts) - set(names))
                if unknown:
                    raise ValueError(f"tasks.{task_name}.{key} names unknown {unknown}")
                if any(n < 1 for n in counts.values()):
                    raise ValueError(f"tasks.{task_name}.{key} needs counts >= 1")
        covered: set[tuple[str, int]] = set()
        for r in self.priority:
            if r.task not in self.tasks:
                raise ValueError(f"priority names task '{r.task}', not one of {list(self.tasks)}")
            covered.update((r.task, s) for s in r.seeds)
        for task_name, task in self.tasks.items():
            top = max([task.seeds, *task.seeds_by_variant.values()])
            missing = [s for s in range(top) if (task_name, s) not in covered]
            if missing:
                raise ValueError(f"priority never schedules {task_name} seed(s) {missing}")
        return self


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file.

    Raises:
        PlanError: missing file, bad YAML or an invalid plan (one sentence).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise PlanError(f"plan {path} cannot be read ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise PlanError(f"plan {path} is not valid YAML ({str(err).splitlines()[0]})") from None
    try:
        return Plan.model_validate(raw if raw is not None else {})
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the plan"
        msg = first["msg"].removeprefix("Value error, ")
        raise PlanError(f"plan {path} is invalid at {where}: {msg}") from None


@dataclass(frozen=True)
class Preset:
    """What the campaign needs from ``conf/experiment/lra/<preset>-<task>.yaml``."""

    path: Path
    exists: bool
    name: str
    max_steps: int | None
    batch_size: int | None = None


def read_preset(conf_dir: Path, preset: str, task: str) -> Preset:
    """The preset's ``name``, ``trainer.max_steps`` and ``data.batch_size`` (None: not set)."""
    path = conf_dir / "experiment" / "lra" / f"{preset}-{task}.yaml"
    default_name = f"lra-{task}-{preset}"
    if not path.is_file():
        return Preset(path, False, default_name, None)
    data = yaml.safe_load(path.read_text()) or {}
    steps = (data.get("trainer") or {}).get("max_steps")
    batch = (data.get("data") or {}).get("batch_size")
    name = str(data.get("name") or default_name)
    return Preset(path, True, name, steps, batch if isinstance(batch, int) else None)


@dataclass
class Run:
    """One planned run and what is known of it."""

    task: str
    variant: str
    seed: int
    preset: Preset
    per_gpu: int
    gpus: int = 1  # GPUs of one segment (data-parallel when > 1)
    state: str = "left"  # done | running | partial | failed | left | skipped
    steps: int = 0
    record: Path | None = None
    note: str = ""
    gpu_seconds: float = 0.0
    dead_head: bool = False  # a partial run whose record says no head unit is live

    @property
    def key(self) -> tuple[str, str, int]:
        """``(task, variant, seed)``."""
        return (self.task, self.variant, self.seed)

    @property
    def label(self) -> str:
        """``task/variant/seed<s>``."""
        return f"{self.task}/{self.variant}/seed{self.seed}"

    @property
    def max_steps(self) -> int:
        """The preset's ``trainer.max_steps`` (0 when unknown)."""
        return int(self.preset.max_steps or 0)

    def add_note(self, note: str) -> None:
        """Append ``note`` to the ledger note, after a ``; `` when there is one already.

        A note the ledger already holds is not added again (the scheduler asks every second).
        """
        if note in self.note.split("; "):
            return
        self.note = f"{self.note}; {note}" if self.note else note


def gpus_on(planned: int, machine: int, batch: int | None) -> int:
    """GPUs a fresh run takes on a machine of ``machine`` GPUs.

    The most, up to ``planned`` and ``machine``, that split the preset's ``batch`` evenly, so
    the effective batch stays the preset's (1 always does; an unknown batch allows only 1).
    """
    if batch is None:
        return 1
    count = min(planned, machine)
    while count > 1 and batch % count:
        count -= 1
    return count


def planned_runs(plan: Plan, conf_dir: Path) -> list[Run]:
    """Every run of the plan in priority order (rounds, then variants in plan order)."""
    runs: list[Run] = []
    seen: set[tuple[str, str, int]] = set()
    for r in plan.priority:
        task = plan.tasks[r.task]
        for v in plan.variants:
            for seed in r.seeds:
                if seed >= task.seeds_of(v.name) or (r.task, v.name, seed) in seen:
                    continue
                seen.add((r.task, v.name, seed))
                preset = read_preset(conf_dir, v.preset_name, r.task)
                gpus = task.gpus_of(v.name)
                run = Run(r.task, v.name, seed, preset, task.per_gpu_of(v.name), gpus)
                if preset.exists and gpus > 1 and (preset.batch_size or 1) % gpus:
                    raise PlanError(
                        f"tasks.{r.task}.gpus_by_variant gives {v.name} {gpus} GPUs, but its "
                        f"preset's data.batch_size {preset.batch_size} does not split into "
                        f"{gpus} equal per-GPU batches"
                    )
                if not preset.exists:
                    run.state = "skipped"
                    run.note = f"no preset {preset.path.name} in conf/experiment/lra/ yet"
                runs.append(run)
    return runs


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when missing or malformed."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class RecordInfo:
    """A ``metrics.json`` found on disk, reduced to what matching needs."""

    path: Path
    status: str
    name: str | None
    seed: int | None
    max_steps: int | None
    steps: int
    wall_time_s: float
    gpu_seconds: float
    data: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def stale(self) -> bool:
        """Whether this preset run predates a change of its preset (see :func:`matches`)."""
        return stale_reason(self.data) is not None


def gpu_seconds_of(run_dir: Path, wall_time_s: float, start_up_s: float = 0.0) -> float:
    """GPU-seconds of a run: ``sum(max(0, w_i - start_up_s) * g_i / k_i)`` over its segments.

    ``k_i`` runs shared each GPU of segment ``i`` and the segment trained on ``g_i`` GPUs
    (``len(gpus)`` of its side-car entry; 1 when the entry names one ``gpu``).

    Without a side car, the record's wall time less ``start_up_s`` (at least 0). With
    ``start_up_s`` the start-up of every segment (each resumed segment starts the process,
    builds the model and compiles again) is taken out, so that a run recorded in two segments
    does not count its start-up twice per step.
    """
    side = read_json(run_dir / SIDE_CAR)
    segments = side.get("segments") if side else None
    if not segments:
        return max(0.0, wall_time_s - start_up_s)
    return sum(
        max(0.0, float(s.get("wall_s", 0)) - start_up_s)
        * len(s.get("gpus") or [0])
        / max(1, int(s.get("per_gpu", 1)))
        for s in segments
    )


def scan_records(roots: Iterable[Path]) -> list[RecordInfo]:
    """Every readable ``metrics.json`` below ``roots``."""
    found: list[RecordInfo] = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("metrics.json")):
            data = read_json(path)
            if data is None:
                continue
            cfg = data.get("config") or {}
            trainer = cfg.get("trainer") or {}
            wall = float(data.get("wall_time_s") or 0.0)
            found.append(
                RecordInfo(
                    path=path,
                    status=str(data.get("status")),
                    name=cfg.get("name"),
                    seed=cfg.get("seed", data.get("seed")),
                    max_steps=trainer.get("max_steps"),
                    steps=int(data.get("steps") or 0),
                    wall_time_s=wall,
                    gpu_seconds=gpu_seconds_of(path.parent, wall),
                    data=data,
                )
            )
    return found


def matches(record: RecordInfo, run: Run) -> bool:
    """Whether ``record`` is a record of ``run`` (any status).

    A preset's run made before the preset changed a value (``experiments.protocol``'s
    ``stale_reason``) is a record of an earlier plan, not of this one.
    """
    return same_preset(record, run) and record.seed == run.seed and not record.stale


def same_preset(record: RecordInfo, run: Run) -> bool:
    """Whether ``record`` was made by ``run``'s preset (this or an earlier revision), any seed."""
    return record.name == run.preset.name and record.max_steps == run.preset.max_steps


def mark_done(runs: list[Run], records: list[RecordInfo]) -> None:
    """Set ``state`` from completed and failed records (completed wins)."""
    for run in runs:
        if run.state == "skipped":
            continue
        mine = [r for r in records if matches(r, run)]
        done = [r for r in mine if r.status == "completed"]
        if done:
            run.state, run.record, run.steps = "done", done[0].path, done[0].steps
            run.gpu_seconds = done[0].gpu_seconds
            if len(done) > 1:
                run.note = f"{len(done)} completed records"
        elif any(r.status == "failed" for r in mine):
            failed = next(r for r in mine if r.status == "failed")
            run.state, run.record = "failed", failed.path
            run.note = str(failed.data.get("failure_reason") or "")[:80]


def ms_per_step(
    runs: list[Run], records: list[RecordInfo], plan: Plan, start_up_s: float = 0.0
) -> tuple[dict[tuple[str, str], float], int]:
    """GPU-ms per step by (task, variant), and how many of them are measured.

    Measured: the median of ``1000 *`` :func:`gpu_seconds_of` ``/ steps`` over the variant's
    records; without one, over the records its preset made before it last changed (stale:
    another revision of the same preset, the best estimate there is until one of the current
    revision exists); else the task's planned ``ms_per_step``. With ``start_up_s`` each
    recorded segment's start-up is taken out (for finish estimates, which add it back once);
    without, the rate holds every cost of a run (for the ledger's GPU-minutes).
    """
    measured: dict[tuple[str, str], list[float]] = {}
    earlier: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for r in records:
            if r.steps <= 0 or r.gpu_seconds <= 0:
                continue
            if matches(r, run):
                found = measured
            elif r.stale and same_preset(r, run):
                found = earlier
            else:
                continue
            seconds = (
                gpu_seconds_of(r.path.parent, r.wall_time_s, start_up_s)
                if start_up_s
                else r.gpu_seconds
            )
            found.setdefault((run.task, run.variant), []).append(1000 * seconds / r.steps)
    out: dict[tuple[str, str], float] = {}
    for run in runs:
        key = (run.task, run.variant)
        rates = measured.get(key) or earlier.get(key)
        out[key] = statistics.median(rates) if rates else plan.tasks[run.task].ms_per_step
    return out, len(measured) + len(set(earlier) - set(measured))


def ledger_lines(
    runs: list[Run], plan: Plan, records: list[RecordInfo], header: str
) -> Iterator[str]:
    """The ledger: one line per run, then totals (done / running / left, GPU-minutes)."""
    rates, n_measured = ms_per_step(runs, records, plan)
    yield header
    yield f"{'task':<11}{'variant':<15}{'seed':>4}  {'state':<8}{'steps':>13}{'GPU-min':>9}  note"
    used = left_min = 0.0
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.state] = counts.get(run.state, 0) + 1
        used += run.gpu_seconds / 60
        steps = f"{run.steps}/{run.max_steps}" if run.max_steps else "-"
        if run.state in ("left", "running", "partial"):
            remaining = max(0, run.max_steps - run.steps)
            left_min += remaining * rates[(run.task, run.variant)] / 60000
        yield (
            f"{run.task:<11}{run.variant:<15}{run.seed:>4}  {run.state:<8}{steps:>13}"
            f"{run.gpu_seconds / 60:>9.1f}  {run.note}"
        ).rstrip()
    planned = [r for r in runs if r.state != "skipped"]
    yield (
        f"totals: done {counts.get('done', 0)}/{len(planned)}, "
        f"running {counts.get('running', 0)}, partial {counts.get('partial', 0)}, "
        f"left {counts.get('left', 0)}, failed {counts.get('failed', 0)}, "
        f"skipped {counts.get('skipped', 0)} (no preset); GPU-min used {used:.1f}, "
        f"estimated left {left_min:.1f} ({n_measured} task/variant rates measured, on "
        "the current or an earlier revision of their presets; the rest planned)"
    )
