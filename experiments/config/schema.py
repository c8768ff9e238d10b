"""The whole experiment config: the harness groups plus the task, attention and model nodes.

The ``task``, ``attention`` and ``model`` fields are discriminated unions (on ``name``) of the
registered config classes: the task table (:mod:`experiments.data.registry`), the token-mixer
table (:mod:`spectrans.registry`) and :data:`spectrans.config.models.ModelConfigUnion`. The
two tables are filled when this module is imported (every module of their packages is), so
the unions hold every task and mixer of the repository. Validating an
:class:`ExperimentConfig` validates each node once into its config object; the builders get
those objects.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from experiments.config.groups import (
    CallbacksConfig,
    DataConfig,
    LoggerConfig,
    OptimizerConfig,
    PathsConfig,
    SchedulerConfig,
    TrainerConfig,
)
from experiments.config.resolvers import variant_name
from experiments.data.config import task_config_union
from spectrans.config.core import StrictModel
from spectrans.config.layers import token_mixer_config_union
from spectrans.config.models import ModelConfigUnion
from spectrans.registry import names as registry_names

TaskConfigUnion = task_config_union()
"""Any registered task config, chosen by ``name``."""
MixerConfigUnion = token_mixer_config_union()
"""Any registered token-mixer config, chosen by ``name``."""


class ExperimentConfig(StrictModel):
    """One training run, fully validated.

    Attributes:
        name: Experiment name; runs of one name share ``<output_dir>/<name>/`` and
            ``resume=auto`` picks the latest of them.
        seed: Seed of everything (model init, data order, generators).
        resume: None, ``auto`` or a run directory holding ``checkpoints/last.ckpt``.
        compile: ``torch.compile`` the model (True), not (False), or ``auto``: on CUDA, time
            a few eager and a few compiled training steps early in the run and keep the
            faster (compilation excluded from the timing).
        compile_mode: ``torch.compile`` mode of the compiled model: ``default``, or
            ``reduce-overhead`` (CUDA graphs: each compiled forward and backward is replayed
            as one graph, which removes the per-kernel launch cost of small models).
        task: Task config (``experiments.data.config``).
        attention: Token-mixer config (None only for ``model=lst``).
        model: Model config (``spectrans.config.models``).
        variant_label: The run's variant in records and tables when the attention name alone
            does not tell it (``lra-performer``: LRA's Performer settings of ``performer``);
            None derives it from the attention (:func:`variant_name`).
    """

    name: str = "default"
    variant_label: str | None = None
    seed: int = Field(0, ge=0, lt=2**32)
    resume: str | None = None
    compile: bool | Literal["auto"] = False
    compile_mode: Literal["default", "reduce-overhead"] = "default"
    task: TaskConfigUnion  # type: ignore[valid-type]
    attention: MixerConfigUnion | None = None  # type: ignore[valid-type]
    model: ModelConfigUnion
    data: DataConfig = DataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    trainer: TrainerConfig = TrainerConfig()
    callbacks: CallbacksConfig = CallbacksConfig()
    logger: LoggerConfig = LoggerConfig()
    paths: PathsConfig = PathsConfig()

    @model_validator(mode="after")
    def _check_cross_fields(self) -> ExperimentConfig:
        if self.trainer.max_steps == 0:
            raise ValueError(
                "trainer.max_steps = 0 is invalid (nothing would be trained); set a positive "
                "number of steps, or -1 to train by trainer.max_epochs"
            )
        task_length = getattr(self.task, "max_length", None)
        model_length = getattr(self.model, "max_sequence_length", None)
        if isinstance(task_length, int) and isinstance(model_length, int):
            if model_length < task_length:
                raise ValueError(
                    f"model.max_sequence_length = {model_length} is shorter than "
                    f"task.max_length = {task_length}; raise model.max_sequence_length to at "
                    f"least {task_length} (or leave it at its default, the task length)"
                )
        positional = getattr(self.model, "positional_encoding", None) or getattr(
            self.model, "positional_encoding_type", None
        )
        if positional == "sinusoidal2d" and isinstance(task_length, int):
            if math.isqrt(task_length) ** 2 != task_length:
                raise ValueError(
                    f"model.positional_encoding = 'sinusoidal2d' needs a square image, but "
                    f"task={self.task.name} has sequences of {task_length} tokens; use it with "
                    "task=image, pathfinder or pathx, or choose sinusoidal or learned"
                )
        if self.scheduler.name == "cosine" and self.trainer.max_steps <= 0:
            raise ValueError(
                f"trainer.max_steps = {self.trainer.max_steps} is invalid with scheduler=cosine; "
                "set trainer.max_steps to a positive number of steps"
            )
        if self.trainer.accelerator == "cpu" and self.trainer.precision in ("16-mixed",):
            raise ValueError(
                f"trainer.precision = '{self.trainer.precision}' is invalid with "
                "trainer.accelerator=cpu; choose one of: 32-true, bf16-mixed"
            )
        model_name = getattr(self.model, "name", None)
        attention_name = getattr(self.attention, "name", None)
        if model_name == "lst" and attention_name not in (None, "lst"):
            raise ValueError(
                f"attention.name = '{attention_name}' is invalid with model=lst (it has its own "
                "LST mixing); use attention=lst or model=encoder"
            )
        if model_name != "lst" and self.attention is None:
            raise ValueError(
                f"attention = None is invalid with model={model_name}; choose one of: "
                f"{', '.join(registry_names())}"
            )
        return self

    @property
    def transform(self) -> str | None:
        """The spectral transform of an LST run (``dct``/``dst``/...), else None."""
        if getattr(self.model, "name", None) == "lst":
            return getattr(self.model, "transform_type", None)
        return getattr(self.attention, "transform_type", None)

    @property
    def variant(self) -> str:
        """``variant_label``, else the attention name plus ``-<transform>`` for LST."""
        if self.variant_label:
            return self.variant_label
        return variant_name(
            getattr(self.attention, "name", None),
            getattr(self.attention, "transform_type", None),
            self.model.name,
            getattr(self.model, "transform_type", None),
        )
