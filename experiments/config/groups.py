"""The harness groups of an experiment config: data, optimizer, scheduler, trainer, ...

Each model forbids unknown keys (:class:`~spectrans.config.core.StrictModel`), so a misspelled
key is an error.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from spectrans.config.core import StrictModel


class DataConfig(StrictModel):
    """Loader settings shared by every task.

    Attributes:
        batch_size: Training batch size per device.
        num_workers: DataLoader worker processes.
    """

    batch_size: int = Field(32, gt=0)
    num_workers: int = Field(0, ge=0)


class OptimizerConfig(StrictModel):
    """Adam or AdamW.

    For ``scheduler.name == 'rsqrt'`` ``lr`` is the LRA *factor* (the schedule multiplies it
    by ``min(1, s/w) / sqrt(max(s, w))``); for the other schedules it is the peak rate.

    Attributes:
        name: ``adamw`` (decoupled weight decay) or ``adam`` (L2 added to the gradient).
        lr: Learning rate (or rsqrt factor).
        betas: Adam ``(beta1, beta2)``; LRA uses ``(0.9, 0.98)``.
        eps: Adam epsilon; LRA uses ``1e-9``.
        weight_decay: Decay coefficient; by default applied to weight matrices only (never
            to norms, biases or other parameters of fewer than two dimensions).
        decay_all: Apply ``weight_decay`` to every parameter, as the LRA code does (its
            Adam decays embeddings, norms and biases alike).
    """

    name: Literal["adamw", "adam"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = Field(1e-9, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    decay_all: bool = False


class SchedulerConfig(StrictModel):
    """Learning-rate schedule, stepped once per optimizer step.

    Attributes:
        name: ``rsqrt``: ``lr * min(1, s/w) / sqrt(max(s, w))`` (LRA); ``cosine``: linear
            warmup to ``lr`` then ``min_lr_ratio + (1 - min_lr_ratio) (1 + cos(pi p)) / 2``
            times ``lr`` over progress ``p`` to ``trainer.max_steps``; ``constant``: linear
            warmup then flat.
        warmup_steps: Linear warmup length ``w``.
        min_lr_ratio: Final fraction of ``lr`` for ``cosine``.
    """

    name: Literal["rsqrt", "cosine", "constant"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)


Precision = Literal["32", "32-true", "bf16-mixed", "16-mixed", "bf16-true", "64-true"]


class TrainerConfig(StrictModel):
    """Keyword arguments of ``lightning.pytorch.Trainer`` (None means Lightning's default).

    Attributes:
        accelerator: ``auto``, ``cpu``, ``gpu``/``cuda`` or ``mps``.
        devices: Number of devices, a list of ids, or ``auto``.
        strategy: ``auto``, ``ddp``, ``ddp_spawn``, ``fsdp``, ...
        precision: ``32-true``/``32``, ``bf16-mixed``, ``16-mixed``.
        max_steps: Optimizer steps (the LRA protocol counts steps, not epochs).
        max_time: Stop cleanly after ``DD:HH:MM:SS`` (then ``resume=auto`` continues), e.g.
            to fit a long run into 10-minute commands.
        val_check_interval: Validate every this many training batches (int) or fraction.
        check_val_every_n_epoch: None for purely step-based validation (then
            ``val_check_interval`` counts training batches across epochs and may exceed an
            epoch, as in the LRA protocol).
        gradient_clip_val: Clip the global gradient norm to this value.
        profiler: Lightning's host-time profiler of the training loop (``simple``: seconds
            per hook, e.g. ``run_training_batch``, ``optimizer_step``, data fetching;
            ``advanced``: cProfile per hook); the reports are written to the run folder as
            ``fit-profile.txt`` and ``test-profile.txt``. It times the host, so the steps it
            profiles run slower.
    """

    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = Field(1, gt=0)
    precision: Precision = "32-true"
    max_steps: int = Field(-1, ge=-1)
    max_epochs: int | None = None
    max_time: str | None = None
    val_check_interval: int | float | None = None
    check_val_every_n_epoch: int | None = 1
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = 50
    accumulate_grad_batches: int = Field(1, gt=0)
    gradient_clip_val: float | None = None
    deterministic: bool | Literal["warn"] | None = None
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    profiler: Literal["simple", "advanced"] | None = None

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("max_time")
    @classmethod
    def _max_time_format(cls, value: str | None) -> str | None:
        """Lightning's ``Timer`` format: days, then two digits each of hours, minutes, seconds."""
        if value is None:
            return value
        match = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", value.strip())
        if match is None:
            raise ValueError(
                f"'{value}' is not a duration DD:HH:MM:SS (two digits each for hours, minutes "
                "and seconds), e.g. 00:00:07:30 for seven and a half minutes"
            )
        if not any(int(part) for part in match.groups()):
            raise ValueError("a duration of zero would stop before the first step")
        return value.strip()

    _NONE_IS_A_VALUE: ClassVar[frozenset[str]] = frozenset({"check_val_every_n_epoch"})
    """Options whose None differs from Lightning's default, so None is passed on."""

    def trainer_kwargs(self) -> dict[str, Any]:
        """Arguments for ``Trainer(**kwargs)``.

        None means Lightning's default and is left out, except for ``check_val_every_n_epoch``
        whose None (validate every ``val_check_interval`` batches, across epochs) differs from
        Lightning's default of 1.
        """
        return {
            k: v
            for k, v in self.model_dump().items()
            if v is not None or k in self._NONE_IS_A_VALUE
        }


class CallbacksConfig(StrictModel):
    """Which callbacks run and how often checkpoints are written.

    Attributes:
        monitor: Metric of the best checkpoint (``val/acc``, maximised).
        checkpoint_every_n_steps: Refresh ``last.ckpt`` every this many optimizer steps (so a
            killed run loses at most this much); None means once per validation.
        nan_guard: Stop with a clear message on a non-finite loss and mark the run failed.
        throughput: Measure train/eval tokens per second and peak memory.
        lr_monitor: Log the learning rate.
        rich_progress: Use the rich progress bar (else Lightning's tqdm bar).
        early_stopping_patience: Stop after this many validations without improvement.
        step_profile: ``START:STEPS``: a ``torch.profiler`` record of the ``STEPS`` training
            steps from global step ``START`` (after any ``compile=auto`` trial), with the wall
            time and the device's busy time per step, the host synchronisations by origin and
            the kernel tables, in ``<run dir>/step-profile.txt``
            (:mod:`experiments.step_profile`). None: off.
    """

    monitor: str = "val/acc"
    mode: Literal["max", "min"] = "max"
    checkpoint_every_n_steps: int | None = Field(None, gt=0)
    nan_guard: bool = True
    throughput: bool = True
    lr_monitor: bool = True
    rich_progress: bool = True
    early_stopping_patience: int | None = Field(None, gt=0)
    step_profile: str | None = None

    @field_validator("step_profile")
    @classmethod
    def _step_window(cls, value: str | None) -> str | None:
        """``START:STEPS`` with ``STEPS >= 1``."""
        if value is None:
            return value
        from experiments.step_profile import parse_window

        start, steps = parse_window(value)
        return f"{start}:{steps}"


class LoggerConfig(StrictModel):
    """Experiment logger.

    Attributes:
        name: ``tensorboard``, ``csv``, ``wandb`` or ``none``.
        project: wandb project.
        offline: wandb offline mode; None means offline unless ``WANDB_MODE=online`` and an
            API key are present (never blocks on a login prompt).
    """

    name: Literal["tensorboard", "csv", "wandb", "none"] = "tensorboard"
    project: str = "spectrans-lra"
    offline: bool | None = None


class PathsConfig(StrictModel):
    """Where things live.

    Attributes:
        root_dir: Repository root.
        data_dir: Task data (generated ListOps/Pathfinder, unpacked LRA release).
        output_dir: Root of run directories (``<output_dir>/<name>/<time>_<id>``).
        run_dir: This run's directory; None means Hydra's output dir (or a fresh unique one).
    """

    root_dir: str = "."
    data_dir: str = "data"
    output_dir: str = "runs"
    run_dir: str | None = None
