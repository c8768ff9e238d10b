"""One training run: compose -> validate -> build -> fit -> test -> ``metrics.json``.

:func:`run` takes a composed config (a DictConfig or a plain dict) and returns the run
record; :func:`main` is what ``train.py``'s ``@hydra.main`` calls: it turns a bad config into
one sentence on stderr and exit code 2, and in a sweep (``-m``) records a failing job and
returns so the sweep goes on.

Order of events in :func:`run`:

1. ``OmegaConf.to_container(resolve=True)`` and :func:`experiments.config.validate_experiment`
   (no data is read and no model is built before the config is valid).
2. The run directory: ``paths.run_dir``, else Hydra's output dir, else a fresh
   ``<output_dir>/<name>/<time>_<id>``; with ``resume`` the resumed run's directory.
3. ``metrics.json`` with ``status: running``.
4. Data module (ListOps/Pathfinder are generated in ``prepare_data`` when missing and the task
   config allows it), classifier, :class:`experiments.module.LRAModule`.
5. ``Trainer.fit`` with best-on-val (``val/acc``, max) and last checkpoints, then
   ``Trainer.test`` of the final model (``test_acc``, the protocol number: LRA tests its
   latest checkpoint) and of the best-on-val checkpoint (``test_acc_best_val``).
6. ``metrics.json`` with ``status: completed`` (or ``failed`` and the reason).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from experiments.callbacks import (
    InterruptCheckpoint,
    NonFiniteGuard,
    SegmentTimer,
    StepProgressBar,
    StepSeeder,
    ThroughputMonitor,
)
from experiments.config import ConfigError, ExperimentConfig, new_run_id, validate_experiment
from experiments.data.errors import DataError
from experiments.module import LRAModule
from experiments.portable import (
    REPO_ROOT,
    cwd_relative,
    make_files_portable,
    portable_command,
    portable_config,
)
from experiments.protocol import classify
from experiments.resume import (
    LAST_CKPT,
    AtomicCheckpointIO,
    find_resume_dir,
    merge_csv_history,
    read_csv_history,
)
from experiments.run_record import RunRecord, git_commit

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, DataError, OSError)
"""Mistakes the user fixes (bad value, missing, empty, corrupt or unreadable data, a folder
that cannot be written): one sentence, exit 2."""


def _is_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except (ImportError, ValueError):
        return False


def _hydra_output_dir() -> Path | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.output_dir)
    except (ImportError, ValueError):
        pass
    return None


def to_container(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Resolved plain-dict form of a composed config."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def fresh_run_dir(exp: ExperimentConfig) -> Path:
    """``paths.run_dir``, Hydra's output dir, or a new ``<output_dir>/<name>/<time>_<id>``."""
    if exp.paths.run_dir:
        return Path(exp.paths.run_dir)
    hydra_dir = _hydra_output_dir()
    if hydra_dir is not None:
        return hydra_dir
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return Path(exp.paths.output_dir) / exp.name / f"{stamp}_{new_run_id()}"


def _make_logger(exp: ExperimentConfig, run_dir: Path) -> Any:
    name = exp.logger.name
    if name == "none":
        return False
    if name == "tensorboard":
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=str(run_dir), name="tb", version="")
    if name == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(run_dir), name="csv", version="")
    from experiments.wandb_offline import make_wandb_logger

    return make_wandb_logger(exp, run_dir)


def _started_at(callbacks: dict[str, pl.Callback], began: float) -> dict[str, pl.Callback]:
    """Date the ``trainer.max_time`` clock back to ``began`` (the start of :func:`run`)."""
    timer = callbacks.get("segment_timer")
    if isinstance(timer, SegmentTimer):
        timer.started = began
    return callbacks


def _make_callbacks(exp: ExperimentConfig, ckpt_dir: Path) -> dict[str, pl.Callback]:
    cb = exp.callbacks
    callbacks: dict[str, pl.Callback] = {
        "best": ModelCheckpoint(
            dirpath=str(ckpt_dir),
            filename="best-step{step}",
            monitor=cb.monitor,
            mode=cb.mode,
            save_top_k=1,
            save_last=False,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
        "last": ModelCheckpoint(
            dirpath=str(ckpt_dir),
            filename="periodic",
            monitor=None,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=cb.checkpoint_every_n_steps,
            enable_version_counter=False,
        ),
        "seeder": StepSeeder(exp.seed),
        "interrupt": InterruptCheckpoint(ckpt_dir / LAST_CKPT.name),
    }
    if cb.nan_guard:
        callbacks["nan_guard"] = NonFiniteGuard()
    if cb.throughput:
        callbacks["throughput"] = ThroughputMonitor()
    if cb.lr_monitor and exp.logger.name != "none":
        from lightning.pytorch.callbacks import LearningRateMonitor

        callbacks["lr_monitor"] = LearningRateMonitor(logging_interval="step")
    if exp.trainer.max_time:
        callbacks["segment_timer"] = SegmentTimer(duration=exp.trainer.max_time, interval="step")
    if cb.early_stopping_patience is not None:
        from lightning.pytorch.callbacks import EarlyStopping

        callbacks["early_stopping"] = EarlyStopping(
            monitor=cb.monitor, mode=cb.mode, patience=cb.early_stopping_patience
        )
    if cb.step_profile is not None:
        from experiments.step_profile import REPORT_NAME, StepProfiler, parse_window

        start, steps = parse_window(cb.step_profile)
        callbacks["step_profile"] = StepProfiler(start, steps, ckpt_dir.parent / REPORT_NAME)
    if exp.trainer.enable_progress_bar and exp.trainer.max_steps > 0:
        callbacks["progress"] = StepProgressBar()
    elif cb.rich_progress and exp.trainer.enable_progress_bar:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks["progress"] = RichProgressBar()
    return callbacks


def _device_name(trainer: pl.Trainer) -> str:
    device = trainer.strategy.root_device
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.machine() or 'unknown'})"


def _hydra_choices() -> dict[str, Any] | None:
    """Hydra's config-group choices of this job (None outside Hydra)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return dict(HydraConfig.get().runtime.choices)
    except (ImportError, ValueError):
        pass
    return None


def run_protocol(raw: dict[str, Any]) -> str:
    """``lra``, ``custom`` or ``debug`` (:mod:`experiments.protocol`)."""
    choices = _hydra_choices()
    if choices is None:
        return classify(raw)[0]
    return classify(
        raw,
        experiment_choice=choices.get("experiment") or "",
        debug_choice=choices.get("debug"),
    )[0]


def _record_fields(exp: ExperimentConfig, raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "protocol": run_protocol(raw),
        "task": exp.task.name,
        "attention": exp.attention.name if exp.attention is not None else None,
        "model": exp.model.name,
        "transform": exp.transform,
        "variant": exp.variant,
        "seed": exp.seed,
        "seq_len": exp.task.max_length,
        "mask": exp.task.mask,
        "precision": exp.trainer.precision,
        "git_commit": git_commit(),
        "config": portable_config(raw),
    }


def check_accelerator(exp: ExperimentConfig) -> None:
    """Refuse a GPU accelerator on a machine without CUDA, in one sentence."""
    wanted = exp.trainer.accelerator
    if wanted in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator = '{wanted}' is invalid on this machine (no CUDA device); "
            "choose one of: cpu, auto (or trainer=cpu)"
        )


def build_datamodule(exp: ExperimentConfig) -> Any:
    """The task's ``LRADataModule`` (docs/interfaces.md §3)."""
    from experiments.data import build_datamodule as build

    return build(
        exp.task,
        data_dir=exp.paths.data_dir,
        batch_size=exp.data.batch_size,
        num_workers=exp.data.num_workers,
        seed=exp.seed,
    )


def build_model(exp: ExperimentConfig, datamodule: Any) -> torch.nn.Module:
    """The classifier for ``datamodule``'s task (docs/interfaces.md §2)."""
    from spectrans.models import build_classifier

    return build_classifier(
        exp.model,
        exp.attention,
        vocab_size=datamodule.vocab_size,
        num_classes=datamodule.num_classes,
        max_length=datamodule.max_length,
        pair=datamodule.is_pair,
        input_type=datamodule.input_type,
    )


def _previous_record(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resume_command(run_dir: Path, *, runnable: bool = False) -> str:
    """This command with ``resume=<run_dir>`` in place of any ``resume=...`` override.

    For the record (default) paths in it are relative to the repository
    (:mod:`experiments.portable`), so it names no folder of this machine; ``runnable`` gives
    the command to type here instead: the arguments as they were typed, shell-quoted, and the
    run folder relative to the current directory (absolute when outside it).
    """
    args = [a for a in sys.argv[1:] if not a.lstrip("+~").startswith("resume=")]
    script = sys.argv[0] if sys.argv else "train.py"
    if runnable:
        return shlex.join(["python", script, *args, f"resume={cwd_relative(run_dir)}"])
    return portable_command([script, *args, f"resume={run_dir}"])


def check_splits(datamodule: Any) -> None:
    """Prepare and load the data now; an empty split is a user error naming the task.

    Raises:
        DataError: a split has no rows.
    """
    from experiments.data.datamodule import SPLITS
    from experiments.data.errors import DataError

    datamodule.prepare_data()
    datamodule.setup("fit")
    for split in SPLITS:
        if len(datamodule.datasets[split]) == 0:
            raise DataError(
                f"the {split} split of task {datamodule.cfg.name} under {datamodule.root} has no "
                "rows; put examples into its file (or regenerate the data)"
            )


def _select_run_dir(exp: ExperimentConfig, raw: dict[str, Any]) -> tuple[Path, str | None]:
    """The run directory and the checkpoint to continue from (None: a fresh run)."""
    run_dir = fresh_run_dir(exp)
    if exp.resume is None:
        return run_dir, None
    resumed = find_resume_dir(exp.resume, exp.paths.output_dir, exp.name, raw, exclude=run_dir)
    if resumed is None:
        print(
            f"resume=auto: no resumable (running, incomplete or interrupted) run of "
            f"'{exp.name}'; starting fresh",
            file=sys.stderr,
        )
        return run_dir, None
    ckpt = str(resumed / LAST_CKPT)
    print(f"Resuming {resumed} from {ckpt}", file=sys.stderr)
    _move_hydra_dir_into(resumed)
    return resumed, ckpt


def _make_trainer(exp: ExperimentConfig, run_dir: Path, callbacks: dict[str, pl.Callback]) -> Any:
    kwargs = exp.trainer.trainer_kwargs()
    kwargs.pop("max_time", None)  # a per-command SegmentTimer instead
    if kwargs.get("profiler"):
        kwargs["profiler"] = _make_profiler(kwargs["profiler"], run_dir)
    if kwargs.get("precision") == "32":
        kwargs["precision"] = "32-true"
    return pl.Trainer(
        **kwargs,
        logger=_make_logger(exp, run_dir),
        callbacks=list(callbacks.values()),
        default_root_dir=str(run_dir),
        use_distributed_sampler=False,
        plugins=[AtomicCheckpointIO()],
    )


def _make_profiler(kind: str, run_dir: Path) -> Any:
    """Lightning's host profiler; reports in ``<run_dir>/{fit,test}-profile.txt``."""
    from lightning.pytorch.profilers import AdvancedProfiler, SimpleProfiler

    profiler = SimpleProfiler if kind == "simple" else AdvancedProfiler
    return profiler(dirpath=str(run_dir), filename="profile")


def _final_status(
    exp: ExperimentConfig, trainer: pl.Trainer, failure: str | None, run_dir: Path
) -> tuple[str, str | None]:
    """``completed``, ``incomplete`` (stopped by ``max_time``) or ``failed`` and the reason."""
    if failure is not None:
        return "failed", failure
    planned = exp.trainer.max_steps
    if 0 < planned and trainer.global_step < planned:
        # Stopped early (trainer.max_time): not the protocol, so not a table entry.
        return "incomplete", (
            f"stopped at step {trainer.global_step} of {planned} (trainer.max_time); "
            f"continue with: {resume_command(run_dir)}"
        )
    return "completed", None


def run(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Train, validate and test one configuration; returns the ``metrics.json`` record.

    A resumed run keeps its record's ``started_at``; ``wall_time_s`` is the sum over all
    segments and the csv log keeps the earlier segments' rows.

    Raises:
        ConfigError: invalid config or resume request (before anything is written).
        DataError, FileNotFoundError, OSError: missing, empty or unreadable data.
        Exception: anything raised by training, after the record is marked failed.
    """
    began = time.monotonic()  # trainer.max_time counts from here (data and restore included)
    raw = to_container(cfg)
    exp = validate_experiment(raw)
    check_accelerator(exp)
    run_dir, ckpt_path = _select_run_dir(exp, raw)
    previous = _previous_record(run_dir) if ckpt_path else {}
    earlier_wall = float(previous.get("wall_time_s") or 0.0)
    pl.seed_everything(exp.seed, workers=True, verbose=False)
    set_matmul_precision(exp.trainer.precision)
    datamodule = build_datamodule(exp)
    check_splits(datamodule)
    record = _open_record(exp, raw, run_dir, previous)
    start = time.perf_counter()
    is_zero, trainer = True, None
    csv_history = read_csv_history(run_dir) if ckpt_path else []
    try:
        model = build_model(exp, datamodule)
        record.update(
            num_params=sum(p.numel() for p in model.parameters()), seq_len=datamodule.max_length
        )
        module = _make_module(exp, model, datamodule)
        callbacks = _started_at(_make_callbacks(exp, run_dir / "checkpoints"), began)
        trainer = _make_trainer(exp, run_dir, callbacks)
        is_zero = trainer.is_global_zero
        if is_zero:
            record.write()
            _make_hydra_files_portable(exp, run_dir)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        trainer.save_checkpoint(run_dir / LAST_CKPT)
        failure, best_path = _test_and_record(
            record,
            trainer,
            module,
            datamodule,
            callbacks,
            lambda: earlier_wall + time.perf_counter() - start,
        )
        if is_zero:
            merge_csv_history(run_dir, csv_history)
            record.finish(*_final_status(exp, trainer, failure, run_dir))
            _print_summary(record.data, run_dir, best_path)
    except BaseException as err:
        if is_zero:
            merge_csv_history(run_dir, csv_history)
            wall = earlier_wall + time.perf_counter() - start
            _finish_after_error(record, trainer, err, run_dir, wall)
        raise
    return record.data


def _test_and_record(
    record: RunRecord,
    trainer: pl.Trainer,
    module: LRAModule,
    datamodule: Any,
    callbacks: dict[str, pl.Callback],
    wall: Callable[[], float],
) -> tuple[str | None, str]:
    """Test the final and the best-on-validation model; put every result into ``record``.

    Returns:
        The failure the non-finite guard saw (None: none) and the best checkpoint's path.
    """
    failure = getattr(callbacks.get("nan_guard"), "failure", None)
    best_path = local_best(callbacks["best"].best_model_path, record.path.parent)  # type: ignore[attr-defined]
    test_accs = _test_final_and_best(trainer, module, datamodule, failure, best_path)
    record.update(**_result_fields(trainer, module, datamodule, test_accs, wall))
    if "throughput" in callbacks:
        record.update(**callbacks["throughput"].summary(trainer.world_size))  # type: ignore[attr-defined]
    return failure, best_path


def _make_hydra_files_portable(exp: ExperimentConfig, run_dir: Path) -> None:
    """Hydra's ``hydra.yaml`` of every segment of the run, its absolute folders made relative.

    Relative to the repository, the working folder or the runs root (``paths.output_dir``).
    """
    roots = [REPO_ROOT, Path.cwd(), Path(exp.paths.output_dir).absolute()]
    make_files_portable(sorted(run_dir.glob("**/.hydra/hydra.yaml")), roots)


def _open_record(
    exp: ExperimentConfig, raw: dict[str, Any], run_dir: Path, previous: dict[str, Any]
) -> RunRecord:
    """The run's record in a created ``run_dir``; a resumed run keeps its ``started_at``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_dir, **_record_fields(exp, raw))
    if previous.get("started_at"):
        record.update(started_at=previous["started_at"])
    return record


def _make_module(exp: ExperimentConfig, model: torch.nn.Module, datamodule: Any) -> LRAModule:
    """The Lightning module that trains ``model`` on ``datamodule``'s task."""
    return LRAModule(
        model,
        num_classes=datamodule.num_classes,
        is_pair=datamodule.is_pair,
        optimizer=exp.optimizer,
        scheduler=exp.scheduler,
        max_steps=exp.trainer.max_steps,
        compile=exp.compile,
        compile_mode=exp.compile_mode,
        batch_size=exp.data.batch_size,
    )


def local_best(best_path: str, run_dir: Path) -> str:
    """The best checkpoint's path on this machine.

    Lightning saves the best checkpoint's absolute path in ``last.ckpt``; when the run folder
    has moved (another machine or folder) and that path does not exist here, the file of the
    same name in ``run_dir/checkpoints`` is the one.
    """
    if best_path and not Path(best_path).exists():
        here = Path(run_dir) / "checkpoints" / Path(best_path).name
        if here.is_file():
            return str(here)
    return best_path


def _test_final_and_best(
    trainer: pl.Trainer,
    module: LRAModule,
    datamodule: Any,
    failure: str | None,
    best_path: str,
) -> tuple[float | None, float | None]:
    """Test accuracy of the final model and of the best-on-validation checkpoint.

    Both are None after a failure; the second is None when no best checkpoint was saved.
    """
    test_acc = test_acc_best_val = None
    if failure is None:
        test_acc = _test(trainer, module, datamodule, None)  # the final model
        if best_path:
            test_acc_best_val = _test(trainer, module, datamodule, cwd_relative(best_path))
    return test_acc, test_acc_best_val


def _result_fields(
    trainer: pl.Trainer,
    module: LRAModule,
    datamodule: Any,
    test_accs: tuple[float | None, float | None],
    elapsed: Callable[[], float],
) -> dict[str, Any]:
    """Record fields of a finished fit: accuracies, steps, epochs, time, chance, head units.

    ``epochs = global_step * accumulate_grad_batches / batches_per_epoch``; ``elapsed()`` is
    the wall time of every segment of the run so far.
    """
    best = module.val_acc_best.compute()
    batches_per_epoch = max(1, int(trainer.num_training_batches or 1))
    return dict(
        val_acc_best=float(best) if torch.isfinite(best) else None,
        test_acc=test_accs[0],
        test_acc_best_val=test_accs[1],
        steps=int(trainer.global_step),
        epochs=trainer.global_step * trainer.accumulate_grad_batches / batches_per_epoch,
        device=_device_name(trainer),
        wall_time_s=elapsed(),
        chance_acc=majority_fraction(datamodule),
        head_live_units=module.last_head_live_units,
    )


def _finish_after_error(
    record: RunRecord, trainer: pl.Trainer | None, err: BaseException, run_dir: Path, wall: float
) -> None:
    """Mark the record ``interrupted`` (then raise :class:`RunInterruptedError`) or ``failed``.

    Lightning marks its trainer interrupted on *every* exception, so the exception decides:
    Ctrl-C reaches here as ``KeyboardInterrupt`` or as the ``SystemExit`` Lightning raises
    after its graceful shutdown (SIGTERM too); anything else is a failure with its message.
    """
    if trainer is not None and isinstance(err, (KeyboardInterrupt, SystemExit)):
        step = trainer.global_step
        record.update(steps=step)
        record.finish(
            "interrupted",
            f"interrupted at step {step}; continue with: {resume_command(run_dir)}",
            wall_time_s=wall,
        )
        raise RunInterruptedError(_runnable(record.data["failure_reason"], run_dir)) from None
    reason = f"{type(err).__name__}: {err}".strip()
    record.finish("failed", reason, wall_time_s=wall)


def _test(
    trainer: pl.Trainer, module: LRAModule, datamodule: Any, ckpt: str | None
) -> float | None:
    """Test accuracy of the module as it is (``ckpt=None``) or of checkpoint ``ckpt``."""
    results = trainer.test(module, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
    return float(results[0]["test/acc"]) if results else None


def set_matmul_precision(precision: str) -> None:
    """TF32 tensor cores for float32 matmuls and convolutions under mixed precision.

    A mixed-precision run computes its float32 islands (FAVOR+ features, normalisers) with
    TF32 (10-bit mantissa products, float32 accumulation), as the step benchmark does; a
    ``32-true`` run keeps full float32 products.
    """
    mixed = precision.endswith("-mixed")
    torch.backends.cuda.matmul.allow_tf32 = mixed
    torch.backends.cudnn.allow_tf32 = mixed


class RunInterruptedError(Exception):
    """Training stopped by Ctrl-C; the message says where and how to continue."""


def majority_fraction(datamodule: Any) -> float | None:
    """Test accuracy of always predicting the most frequent training label (chance level)."""
    try:
        train = datamodule.datasets["train"].arrays["labels"]
        test = datamodule.datasets["test"].arrays["labels"]
    except (AttributeError, KeyError):
        return None
    if len(train) == 0 or len(test) == 0:
        return None
    majority = int(np.bincount(np.asarray(train)).argmax())
    return float((np.asarray(test) == majority).mean())


def _runnable(reason: str, run_dir: Path) -> str:
    """A recorded reason with its portable ``continue with:`` command made runnable here."""
    head, sep, _ = reason.partition("continue with: ")
    return f"{head}{sep}{resume_command(run_dir, runnable=True)}" if sep else reason


def _print_summary(data: dict[str, Any], run_dir: Path, best_path: str) -> None:
    def pct(value: Any) -> str:
        return f"{100 * value:.2f}%" if isinstance(value, float) else "n/a"

    run_dir = Path(cwd_relative(run_dir))
    reason = data["failure_reason"]
    logs = [p for p in (run_dir / "tb", run_dir / "csv", run_dir / "wandb") if p.exists()]
    print(
        f"\nRun {data['status']}: {data['variant']} on {data['task']}, "
        f"val/acc_best {pct(data['val_acc_best'])}, test/acc {pct(data['test_acc'])} (final), "
        f"{pct(data.get('test_acc_best_val'))} (best-on-val); chance (the majority class) "
        f"{pct(data.get('chance_acc'))}; protocol {data.get('protocol')}\n"
        f"  logs:        {', '.join(map(str, logs)) or 'none (logger=none)'}\n"
        f"  checkpoints: {run_dir / 'checkpoints'} (best: {Path(best_path).name or 'none'}, "
        f"last: last.ckpt)\n"
        f"  metrics:     {run_dir / 'metrics.json'}\n"
        + (f"  reason:      {_runnable(reason, run_dir)}\n" if reason else "")
        + (DEAD_HEAD_NOTE if data.get("head_live_units") == 0 else ""),
        file=sys.stderr,
    )


DEAD_HEAD_NOTE = (
    "  head:        no ReLU unit of the classifier head's first layer is positive for any "
    "validation example: only the output bias still learns, and every input gets the same "
    "logits (head_live_units = 0 in metrics.json)\n"
)


FAILED_JOBS: list[str] = []
"""Sweep jobs (``-m``) that failed in this process; ``train.py`` exits 1 when any did."""


def _path_key(filename: str, paths: dict[str, Any]) -> str:
    """The ``paths.*`` key of the innermost folder holding ``filename`` (else both folder keys)."""
    target = Path(filename).absolute()
    holders = [
        (len(Path(folder).absolute().parts), f"paths.{key}")
        for key in ("run_dir", "output_dir", "data_dir")
        if (folder := paths.get(key)) and target.is_relative_to(Path(folder).absolute())
    ]
    return max(holders)[1] if holders else "paths.data_dir / paths.output_dir"


def _config_paths(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """The resolved ``paths`` group of ``cfg`` (empty when it cannot be resolved)."""
    try:
        paths = to_container(cfg).get("paths")
    except Exception:  # noqa: BLE001 - only a hint for the error sentence
        return {}
    return paths if isinstance(paths, dict) else {}


def _one_sentence(err: BaseException, paths: dict[str, Any] | None = None) -> str:
    """The error as one line; an OS error names the path, the ``paths.*`` key and the fix."""
    if isinstance(err, OSError) and not isinstance(err, DataError) and err.filename:
        key = _path_key(os.fspath(err.filename), paths or {})
        return (
            f"cannot use {err.filename}: {err.strerror or err}; make it readable and writable "
            f"or point {key} elsewhere"
        )
    return " ".join(str(err).split()) or type(err).__name__


def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``val_acc_best`` (for sweepers) or None.

    A user error prints one sentence to stderr and exits with code 2; a failed run (an
    exception in training, a non-finite loss) or Ctrl-C exits with code 1 after its record is
    written. In a sweep (``-m``) a failing job is recorded and the sweep goes on; ``train.py``
    exits 1 at the end when any job failed.
    """
    multirun = _is_multirun()
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        record = run(cfg)
    except USER_ERRORS as err:
        _drop_orphan_hydra_dir()
        if full:
            traceback.print_exc()
        sentence = _one_sentence(err, _config_paths(cfg))
        print(f"error: {sentence}", file=sys.stderr)
        if multirun:
            _record_early_failure(cfg, err)
            FAILED_JOBS.append(sentence)
            return None
        sys.exit(2)
    except RunInterruptedError as err:
        print(f"\n{err}", file=sys.stderr)
        sys.exit(1)
    except Exception as err:
        if full:
            raise
        traceback.print_exc()
        print(f"error: the run failed: {_one_sentence(err)}", file=sys.stderr)
        if multirun:
            _record_early_failure(cfg, err)
            FAILED_JOBS.append(_one_sentence(err))
            return None
        sys.exit(1)
    if record.get("status") == "failed":
        FAILED_JOBS.append(str(record.get("failure_reason")))
        if not multirun:
            sys.exit(1)
    return record.get("val_acc_best")


def _drop_orphan_hydra_dir() -> None:
    """Remove this job's Hydra output dir when it holds only Hydra's own files."""
    out = _hydra_output_dir()
    if out is None or not out.is_dir() or _is_multirun():
        return
    if all(p.name == ".hydra" or p.suffix == ".log" for p in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)
        with contextlib.suppress(OSError):
            out.parent.rmdir()  # only when empty


def _move_hydra_dir_into(run_dir: Path) -> None:
    """Move this command's Hydra output dir into ``run_dir/segments/`` (a resumed run).

    The folder is renamed, so Hydra's open log file keeps being written at its new place.
    """
    out = _hydra_output_dir()
    if out is None or _is_multirun() or not out.is_dir() or out.resolve() == run_dir.resolve():
        return
    target = run_dir / "segments" / out.name
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(out, target)


def _record_early_failure(cfg: DictConfig, err: BaseException) -> None:
    """In a sweep, make sure the job folder has a failed ``metrics.json``."""
    out = _hydra_output_dir()
    if out is None or (out / "metrics.json").exists():
        return
    try:
        raw = to_container(cfg)
    except Exception:  # noqa: BLE001 - an unresolvable config is itself the failure
        raw = None
    RunRecord(out, config=raw).finish("failed", f"{type(err).__name__}: {err}")
