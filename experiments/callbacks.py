"""Harness callbacks: NaN/inf guard, throughput and peak memory, per-step seeding.

- :class:`NonFiniteGuard` stops training at the first non-finite training loss and keeps the
  reason, so the run is recorded as failed with one clear sentence.
- :class:`ThroughputMonitor` counts processed token positions ``B * N`` (padding included:
  that is what the hardware computes) per second of train / eval batch time, and the peak
  memory (GPU: ``torch.cuda.max_memory_allocated``; CPU: max RSS from ``getrusage``).
- :class:`SegmentTimer` stops after ``trainer.max_time`` of this command (not of the run).
- :class:`InterruptCheckpoint` saves ``last.ckpt`` when the user presses Ctrl-C.
- :class:`StepProgressBar` shows training progress in optimizer steps (step-based runs).
- :class:`StepSeeder` reseeds torch at every training batch from ``(seed, rank, step)``, so
  dropout masks and random-feature redraws depend on the step only and a resumed run draws
  exactly what an uninterrupted one would have drawn.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Timer, TQDMProgressBar
from lightning.pytorch.trainer.states import RunningStage


def _batch_tokens(batch: Any) -> int:
    """Token positions ``B * N`` in a batch dict (both documents of a pair)."""
    if not isinstance(batch, dict):
        return 0
    total = 0
    for key, value in batch.items():
        if key.startswith(("input_ids", "input_values")) and isinstance(value, torch.Tensor):
            total += value.numel()
    return total


class NonFiniteGuard(pl.Callback):
    """Stop at the first NaN/inf training loss; ``failure`` holds the reason (else None).

    Each step's loss is copied into a device buffer (one copy, no host read) and the buffer is
    read back every ``check_every`` steps and when training ends; the first non-finite loss
    in it names its step. So training stops at most ``check_every`` steps after the bad one
    and the steps in between never wait for the host.

    Args:
        check_every: Steps between reads. None: ``trainer.log_every_n_steps`` on CUDA (the
            logging steps read the device anyway), every step on the CPU.
    """

    def __init__(self, check_every: int | None = None) -> None:
        self.check_every = check_every
        self.failure: str | None = None
        self._losses: torch.Tensor | None = None  # (k,) float32, the losses since the last read
        self._steps: list[int] = []  # the global steps of those losses

    def _interval(self, trainer: pl.Trainer, loss: torch.Tensor) -> int:
        if self.check_every is not None:
            return max(1, self.check_every)
        return max(1, int(trainer.log_every_n_steps or 1)) if loss.is_cuda else 1

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Record the loss just computed; read the record back on checking steps."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None or self.failure is not None:
            return
        every = self._interval(trainer, loss)
        buffer = self._losses
        if buffer is None or buffer.device != loss.device or buffer.numel() < every:
            self._check(trainer)  # what an older buffer holds, before it is replaced
            if self.failure is not None:
                return
            buffer = self._losses = torch.empty(every, device=loss.device)  # (every,)
        buffer[len(self._steps)].copy_(loss.detach())
        self._steps.append(trainer.global_step)
        if trainer.global_step % every == 0 or len(self._steps) == buffer.numel():
            self._check(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Read back the steps since the last check."""
        self._check(trainer)

    def _check(self, trainer: pl.Trainer) -> None:
        steps, self._steps = self._steps, []
        if not steps or self._losses is None or self.failure is not None:
            return
        values = self._losses[: len(steps)].tolist()  # one read of the device
        bad = next(
            ((s, v) for s, v in zip(steps, values, strict=True) if not math.isfinite(v)), None
        )
        if bad is None:
            return
        step, value = bad
        self.failure = (
            f"train/loss became {value} at step {step}; lower optimizer.lr, "
            "set trainer.gradient_clip_val, or use trainer.precision=32-true"
        )
        print(f"[nan-guard] {self.failure}", file=sys.stderr)
        trainer.should_stop = True


def peak_memory() -> tuple[int, str]:
    """Peak memory of this process: ``(bytes, kind)``.

    Returns:
        ``(torch.cuda.max_memory_allocated(), "cuda_max_allocated")`` when CUDA is in use,
        else ``(ru_maxrss * 1024, "cpu_max_rss")`` (Linux reports ``ru_maxrss`` in KiB).
    """
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated()), "cuda_max_allocated"
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024
    return int(rss_kib * scale), "cpu_max_rss"


def synced_clock(pl_module: pl.LightningModule) -> float:
    """``time.perf_counter()`` after the module's device has finished its queued work."""
    if pl_module.device.type == "cuda":
        torch.cuda.synchronize(pl_module.device)
    return time.perf_counter()


class ThroughputMonitor(pl.Callback):
    """Tokens per second of training and evaluation batches, and the peak memory.

    The first ``skip_batches`` training batches (warm-up, compilation) are not timed, nor
    are the steps of a ``compile=auto`` trial (the module's ``chooser``, which compiles and
    switches modes), nor is validation. Training is timed in windows that close on logging steps
    (``trainer.log_every_n_steps``), before validation and when training ends; the device is
    synchronised only when a window opens or closes, never inside one.
    ``train_tokens_per_s = sum(B*N) / sum(window seconds)`` over the timed batches.
    Evaluation (validation and test) is timed per evaluation loop, from its start to its end,
    so it includes fetching its batches and the device is synchronised twice per loop, not
    around every batch: ``eval_tokens_per_s = sum(B*N) / sum(loop seconds)``.
    """

    def __init__(self, skip_batches: int = 2) -> None:
        self.skip_batches = skip_batches
        self.train_tokens = 0
        self.train_seconds = 0.0
        self.eval_tokens = 0
        self.eval_seconds = 0.0
        self._seen_train = 0
        self._start = 0.0
        self._window_start: float | None = None
        self._window_tokens = 0

    @staticmethod
    def _now(pl_module: pl.LightningModule) -> float:
        return synced_clock(pl_module)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Open a timing window once the warm-up batches and a compile trial are done."""
        trial = getattr(pl_module, "chooser", None) is not None
        if self._window_start is None and self._seen_train >= self.skip_batches and not trial:
            self._window_start = self._now(pl_module)
            self._window_tokens = 0

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Count this batch's tokens; close the window on logging steps."""
        self._seen_train += 1
        if self._window_start is None:
            return
        self._window_tokens += _batch_tokens(batch)
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self._close_window(pl_module)
            if self.train_seconds > 0:
                pl_module.log("train/tokens_per_s", self.train_tokens / self.train_seconds)

    def _close_window(self, pl_module: pl.LightningModule) -> None:
        if self._window_start is None:
            return
        self.train_seconds += self._now(pl_module) - self._window_start
        self.train_tokens += self._window_tokens
        self._window_start, self._window_tokens = None, 0

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the training window: validation time is not training time."""
        self._close_window(pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Close the last training window."""
        self._close_window(pl_module)

    def _eval_start(self, pl_module: pl.LightningModule) -> None:
        self._start = self._now(pl_module)

    def _eval_end(self, pl_module: pl.LightningModule) -> None:
        self.eval_seconds += self._now(pl_module) - self._start

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the evaluation clock (one synchronisation per evaluation, not per batch)."""
        self._eval_start(pl_module)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count this batch's tokens."""
        self.eval_tokens += _batch_tokens(batch)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Stop the evaluation clock."""
        self._eval_end(pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the evaluation clock."""
        self._eval_start(pl_module)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count this batch's tokens."""
        self.eval_tokens += _batch_tokens(batch)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Stop the evaluation clock."""
        self._eval_end(pl_module)

    def summary(self, world_size: int = 1) -> dict[str, Any]:
        """``train_tokens_per_s``, ``eval_tokens_per_s`` (None if unmeasured), peak memory.

        Rates are measured on this process and multiplied by ``world_size`` (every rank
        processes an equal share under DDP); the peak memory is this process's.
        """
        peak, kind = peak_memory()
        return {
            "train_tokens_per_s": world_size * self.train_tokens / self.train_seconds
            if self.train_seconds > 0
            else None,
            "eval_tokens_per_s": world_size * self.eval_tokens / self.eval_seconds
            if self.eval_seconds > 0
            else None,
            "peak_memory_bytes": peak,
            "peak_memory_kind": kind,
        }


class SegmentTimer(Timer):
    """Lightning's ``Timer`` (stop after ``duration``), counted per invocation from ``started``.

    Lightning restores the elapsed time from a checkpoint, so ``max_time`` would be a total
    over all resumed segments; this timer ignores the saved time, so every command
    (``... resume=auto``) gets the full ``duration``. Lightning's clock starts when training
    starts; this one starts at ``started`` (a :func:`time.monotonic` reading taken when the
    command began), so reading the data, building the model and restoring the checkpoint
    count too: a command given ``max_time`` by a deadline stops before that deadline however
    long its start-up took.

    Args:
        started: :func:`time.monotonic` at the start of the command (default: now).
        *args, **kwargs: Passed to :class:`~lightning.pytorch.callbacks.Timer`.
    """

    def __init__(self, *args: Any, started: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.monotonic() if started is None else started

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Date the training clock back to the start of the command."""
        super().on_train_start(trainer, pl_module)
        self._start_time[RunningStage.TRAINING] = self.started

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Start this segment's clock from zero."""


class StepSeeder(pl.Callback):
    """Seed torch before every training batch with ``seed + 1_000_003 * rank + step``.

    Makes the randomness of step ``t`` a function of ``(seed, rank, t)`` only, so a run resumed
    from any checkpoint repeats the uninterrupted run's dropout and feature draws.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Reseed from the global step."""
        seed_step(self.seed + 1_000_003 * trainer.global_rank + trainer.global_step, pl_module)


def seed_step(seed: int, module: torch.nn.Module | None = None) -> None:
    """Seed the generators a training step draws from: the CPU one and the module's device's.

    Draws the same numbers as ``torch.manual_seed(seed)`` on the CPU and on every initialised
    CUDA device (and on MPS/XPU when the module lives there). ``torch.manual_seed`` also
    defers a seeding, with a formatted stack trace, for every backend that is not initialised
    (XPU, MTIA, and CUDA in a CPU run): host work on every step for generators no step of
    this run draws from, skipped here.

    Args:
        seed: The seed of this step.
        module: The module being trained (None: the CPU and initialised CUDA only).
    """
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)
    device = getattr(module, "device", None)
    kind = device.type if isinstance(device, torch.device) else "cpu"
    if kind == "mps":
        torch.mps.manual_seed(seed)
    elif kind == "xpu":
        torch.xpu.manual_seed_all(seed)


class InterruptCheckpoint(pl.Callback):
    """On Ctrl-C, save ``last.ckpt`` at the current step so ``resume`` loses nothing.

    Lightning calls ``on_exception`` with the ``KeyboardInterrupt`` before it tears the
    trainer down; the run is then recorded as ``interrupted`` with this step.

    Args:
        path: Where ``last.ckpt`` lives.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Save the state when training was interrupted by the user."""
        if isinstance(exception, KeyboardInterrupt) and trainer.state.fn == "fit":
            trainer.save_checkpoint(self.path)


def progress_numbers(pl_module: pl.LightningModule | None) -> dict[str, float]:
    """The module's ``progress_values`` as numbers (one device read each; {} if none)."""
    values = getattr(pl_module, "progress_values", None) or {}
    return {k: float(v) for k, v in values.items()}


class StepProgressBar(TQDMProgressBar):
    """A training bar counted in optimizer steps, ``step t/max_steps``, over all epochs.

    Lightning's bar counts batches of the current epoch and prints ``Epoch e/max_epochs-1``,
    which reads ``Epoch 0/-2`` on a step-based run (``max_epochs=-1``).

    The ``train/*`` values the module logs are not marked ``prog_bar`` (Lightning would read
    every progress-bar value from the device after every batch); the bar reads the module's
    ``progress_values`` (the tensors it logged) on logging steps, when the loggers read them
    too, and at the last step, and shows them until the next.
    """

    _train_values: dict[str, float] | None = None

    min_interval = 0.1
    """Seconds between redraws of the training bar (tqdm's own default)."""
    _last_draw = float("-inf")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """One bar for the whole run, starting at the (resumed) step."""
        self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset(total=trainer.max_steps)
        self.train_progress_bar.n = trainer.global_step
        self.train_progress_bar.set_description("Training steps")

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        """Keep the run-long bar (no per-epoch reset)."""

    def get_metrics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        """Lightning's bar metrics and the ``train/*`` numbers read on the last logging step."""
        return {**super().get_metrics(trainer, pl_module), **(self._train_values or {})}

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Show the global step and the logged metrics, at most every ``min_interval`` s.

        The step count is kept every step; the bar is redrawn when ``min_interval`` seconds
        have passed since the last redraw, on logging steps (new metrics) and at the last
        step, so the terminal is not written once per step.
        """
        bar = self.train_progress_bar
        if bar is None or not self._should_update(trainer.global_step, bar.total):
            return
        bar.n = trainer.global_step
        now = time.monotonic()
        every = max(1, int(trainer.log_every_n_steps or 1))
        logging_step = trainer.global_step % every == 0
        last = trainer.global_step >= (bar.total or 0)
        if logging_step or last or not self._train_values:
            self._train_values = progress_numbers(pl_module)
        if now - self._last_draw >= self.min_interval or logging_step or last:
            self._last_draw = now
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()
