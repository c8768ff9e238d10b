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

import json
import platform
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from experiments.callbacks import NonFiniteGuard, SegmentTimer, StepSeeder, ThroughputMonitor
from experiments.config import ConfigError, ExperimentConfig, new_run_id, validate_experiment
from experiments.module import LRAModule
from experiments.resume import (
    LAST_CKPT,
    AtomicModelCheckpoint,
    find_resume_dir,
    make_resumable,
    save_atomic,
)
from experiments.run_record import RunRecord, git_commit

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError)
"""Mistakes the user fixes (bad value, missing data or checkpoint): one sentence, exit 2."""


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


def _make_callbacks(exp: ExperimentConfig, ckpt_dir: Path) -> dict[str, pl.Callback]:
    cb = exp.callbacks
    callbacks: dict[str, pl.Callback] = {
        "best": AtomicModelCheckpoint(
            dirpath=str(ckpt_dir),
            filename="best-step{step}",
            monitor=cb.monitor,
            mode=cb.mode,
            save_top_k=1,
            save_last=False,
            auto_insert_metric_name=False,
            enable_version_counter=False,
        ),
        "last": AtomicModelCheckpoint(
            dirpath=str(ckpt_dir),
            filename="periodic",
            monitor=None,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=cb.checkpoint_every_n_steps,
            enable_version_counter=False,
        ),
        "seeder": StepSeeder(exp.seed),
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
    if cb.rich_progress and exp.trainer.enable_progress_bar:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks["progress"] = RichProgressBar()
    return callbacks


def _device_name(trainer: pl.Trainer) -> str:
    device = trainer.strategy.root_device
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.machine() or 'unknown'})"


def _record_fields(exp: ExperimentConfig, raw: dict[str, Any]) -> dict[str, Any]:
    return {
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
        "config": raw,
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


def _previous_wall_time(run_dir: Path) -> float:
    try:
        return float(json.loads((run_dir / "metrics.json").read_text()).get("wall_time_s") or 0)
    except (OSError, ValueError, TypeError):
        return 0.0


def run(cfg: DictConfig | dict[str, Any]) -> dict[str, Any]:
    """Train, validate and test one configuration; returns the ``metrics.json`` record.

    Raises:
        ConfigError: invalid config (before anything is built).
        FileNotFoundError: missing data, or ``resume`` pointing at no checkpoint.
        Exception: anything raised by training, after the record is marked failed.
    """
    raw = to_container(cfg)
    exp = validate_experiment(raw)
    check_accelerator(exp)
    run_dir, ckpt_path = fresh_run_dir(exp), None
    if exp.resume is not None:
        resumed = find_resume_dir(exp.resume, exp.paths.output_dir, exp.name, exclude=run_dir)
        if resumed is not None:
            run_dir, ckpt_path = resumed, str(resumed / LAST_CKPT)
            print(f"Resuming {resumed} from {ckpt_path}", file=sys.stderr)
        else:
            print(f"resume=auto: no earlier run of '{exp.name}'; starting fresh", file=sys.stderr)
    run_dir.mkdir(parents=True, exist_ok=True)
    earlier_wall = _previous_wall_time(run_dir) if ckpt_path else 0.0
    record = RunRecord(run_dir, **_record_fields(exp, raw))
    start = time.perf_counter()
    is_zero = True
    try:
        pl.seed_everything(exp.seed, workers=True, verbose=False)
        datamodule = build_datamodule(exp)
        model = build_model(exp, datamodule)
        record.update(
            num_params=sum(p.numel() for p in model.parameters()), seq_len=datamodule.max_length
        )
        module = LRAModule(
            model,
            num_classes=datamodule.num_classes,
            is_pair=datamodule.is_pair,
            optimizer=exp.optimizer,
            scheduler=exp.scheduler,
            max_steps=exp.trainer.max_steps,
            compile=exp.compile,
        )
        callbacks = _make_callbacks(exp, run_dir / "checkpoints")
        kwargs = exp.trainer.trainer_kwargs()
        kwargs.pop("max_time", None)  # a per-command SegmentTimer instead
        if kwargs.get("precision") == "32":
            kwargs["precision"] = "32-true"
        trainer = pl.Trainer(
            **kwargs,
            logger=_make_logger(exp, run_dir),
            callbacks=list(callbacks.values()),
            default_root_dir=str(run_dir),
            use_distributed_sampler=False,
        )
        is_zero = trainer.is_global_zero
        if is_zero:
            record.write()
        make_resumable(datamodule, trainer, exp.seed)
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        save_atomic(trainer, run_dir / LAST_CKPT)
        guard = callbacks.get("nan_guard")
        failure = getattr(guard, "failure", None)
        best_path = callbacks["best"].best_model_path  # type: ignore[attr-defined]
        test_acc = test_acc_best_val = None
        if failure is None:
            test_acc = _test(trainer, module, datamodule, None)  # the final model
            if best_path:
                test_acc_best_val = _test(trainer, module, datamodule, best_path)
        best = module.val_acc_best.compute()
        batches_per_epoch = max(1, int(trainer.num_training_batches or 1))
        record.update(
            val_acc_best=float(best) if torch.isfinite(best) else None,
            test_acc=test_acc,
            test_acc_best_val=test_acc_best_val,
            steps=int(trainer.global_step),
            epochs=trainer.global_step * trainer.accumulate_grad_batches / batches_per_epoch,
            device=_device_name(trainer),
            wall_time_s=earlier_wall + time.perf_counter() - start,
        )
        if "throughput" in callbacks:
            record.update(**callbacks["throughput"].summary(trainer.world_size))  # type: ignore[attr-defined]
        if is_zero:
            status, reason = "failed" if failure else "completed", failure
            planned = exp.trainer.max_steps
            if failure is None and 0 < planned and trainer.global_step < planned:
                # Stopped early (trainer.max_time): not the protocol, so not a table entry.
                status = "incomplete"
                reason = (
                    f"stopped at step {trainer.global_step} of {planned} "
                    f"(trainer.max_time); continue with resume={run_dir}"
                )
            record.finish(status, reason)
            _print_summary(record.data, run_dir, best_path)
    except BaseException as err:
        if is_zero:
            reason = f"{type(err).__name__}: {err}".strip()
            record.finish("failed", reason, wall_time_s=earlier_wall + time.perf_counter() - start)
        raise
    return record.data


def _test(
    trainer: pl.Trainer, module: LRAModule, datamodule: Any, ckpt: str | None
) -> float | None:
    """Test accuracy of the module as it is (``ckpt=None``) or of checkpoint ``ckpt``."""
    results = trainer.test(module, datamodule=datamodule, ckpt_path=ckpt, verbose=False)
    return float(results[0]["test/acc"]) if results else None


def _print_summary(data: dict[str, Any], run_dir: Path, best_path: str) -> None:
    def pct(value: Any) -> str:
        return f"{100 * value:.2f}%" if isinstance(value, float) else "n/a"

    logs = [p for p in (run_dir / "tb", run_dir / "csv", run_dir / "wandb") if p.exists()]
    print(
        f"\nRun {data['status']}: {data['variant']} on {data['task']}, "
        f"val/acc_best {pct(data['val_acc_best'])}, test/acc {pct(data['test_acc'])} (final), "
        f"{pct(data.get('test_acc_best_val'))} (best-on-val)\n"
        f"  logs:        {', '.join(map(str, logs)) or 'none (logger=none)'}\n"
        f"  checkpoints: {run_dir / 'checkpoints'} (best: {Path(best_path).name or 'none'}, "
        f"last: last.ckpt)\n"
        f"  metrics:     {run_dir / 'metrics.json'}\n"
        + (f"  reason:      {data['failure_reason']}\n" if data["failure_reason"] else ""),
        file=sys.stderr,
    )


def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns ``val_acc_best`` (for sweepers) or None.

    A user error prints one sentence to stderr and exits with code 2 (in a sweep the job is
    recorded as failed and the sweep continues); any other failure is recorded and re-raised,
    except in a sweep, where it is printed and the next job runs.
    """
    multirun = _is_multirun()
    try:
        record = run(cfg)
    except USER_ERRORS as err:
        if multirun:
            _record_early_failure(cfg, err)
            print(f"error: {err}", file=sys.stderr)
            return None
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        if not multirun:
            raise
        _record_early_failure(cfg, err)
        traceback.print_exc()
        return None
    return record.get("val_acc_best")


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
