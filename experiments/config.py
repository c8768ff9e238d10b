"""The validated experiment config: every check happens here, before any data or model exists.

Hydra composes ``conf/`` into a DictConfig; :func:`validate_experiment` turns
``OmegaConf.to_container(cfg, resolve=True)`` into an :class:`ExperimentConfig`. The
sub-nodes ``task``, ``attention`` and ``model`` are validated by the discriminated unions of
their owners (``experiments.data.config``, :func:`spectrans.config.layers.parse_layer_config`,
``spectrans.config.models``); the harness nodes (optimizer, scheduler, trainer, ...) are
defined below. Every model forbids unknown keys, so a misspelled key is an error.

A failure is a :class:`ConfigError` whose message is one sentence naming the key, the value
and the allowed choices, e.g. ``attention.name = 'perfomer' is invalid; choose one of:
softmax, spectral, ...``.
"""

from __future__ import annotations

import typing
import uuid
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from spectrans.config.core import StrictModel
from spectrans.config.layers import parse_layer_config
from spectrans.registry import names as registry_names


class ConfigError(ValueError):
    """An invalid experiment config; the message is one sentence for the user."""


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

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

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
    """

    monitor: str = "val/acc"
    mode: Literal["max", "min"] = "max"
    checkpoint_every_n_steps: int | None = Field(None, gt=0)
    nan_guard: bool = True
    throughput: bool = True
    lr_monitor: bool = True
    rich_progress: bool = True
    early_stopping_patience: int | None = Field(None, gt=0)


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
    task: Any
    attention: Any = None
    model: Any
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


def _owned_unions() -> tuple[tuple[str, Any, list[type]], ...]:
    """Nodes validated by unions owned elsewhere: key, validating callable, member classes."""
    from experiments.data.config import parse_task_config
    from experiments.data.registry import config_classes
    from spectrans.config.models import ModelConfigUnion

    model_union = typing.get_args(ModelConfigUnion)[0]
    return (
        ("task", parse_task_config, list(config_classes())),
        (
            "model",
            TypeAdapter(ModelConfigUnion).validate_python,
            list(typing.get_args(model_union)),
        ),
    )


def _owner_by_name(members: list[type]) -> Any:
    """``owner_of`` callback: the union member whose ``name`` default equals the node's name."""

    def owner_of(data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
        name = data.get("name") if isinstance(data, dict) else None
        for member in members:
            field = getattr(member, "model_fields", {}).get("name")
            if field is not None and field.default == name and len(loc) == 1:
                return member
        return None

    return owner_of


def _choices_of(node_model: type[BaseModel] | None) -> str:
    if node_model is None:
        return ""
    return ", ".join(node_model.model_fields)


def _field_model(root: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic class that owns the last key of ``loc`` (for listing allowed keys)."""
    current: Any = root
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _sentence(error: dict[str, Any], prefix: str, owner: type[BaseModel] | None) -> str:
    """Format one pydantic error as ``<key> = <value> is invalid; <what to do>``."""
    loc = [str(p) for p in error.get("loc", ())]
    key = ".".join([prefix, *loc]) if prefix else ".".join(loc)
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = _choices_of(owner)
        hint = f"; allowed keys: {allowed}" if allowed else ""
        return f"{key} = {value!r} is an unknown key{hint}"
    if kind == "union_tag_invalid":
        tag_key = f"{key}.name" if key else "name"
        expected = ctx.get("expected_tags")
        return f"{tag_key} = {ctx.get('tag')!r} is invalid; choose one of: {expected}"
    if kind == "union_tag_not_found":
        return f"{key}.name is missing; set it to one of the registered names"
    if kind == "literal_error":
        return f"{key} = {value!r} is invalid; choose one of: {ctx.get('expected')}"
    if kind == "missing":
        return f"{key} is missing; set it on the command line ({key}=...) or in the config"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "value_error":
        return f"{key}: {message}" if key else message
    return f"{key} = {value!r} is invalid: {message}"


def _validate_node(validate: Any, data: Any, prefix: str, owner_of: Any = None) -> Any:
    """Run ``validate(data)``; turn the first pydantic error into a :class:`ConfigError`."""
    try:
        return validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first.get("loc", ()))
        tag = data.get("name") if isinstance(data, dict) else None
        if loc and tag is not None and str(loc[0]) == str(tag):
            loc = loc[1:]  # drop the union tag pydantic puts in front
        first = {**first, "loc": loc}
        owner = owner_of(data, loc) if owner_of is not None else None
        raise ConfigError(_sentence(first, prefix, owner)) from None


def _mixer_owner(data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    from spectrans.registry import REGISTRY

    name = data.get("name") if isinstance(data, dict) else None
    entry = REGISTRY.get(str(name))
    return entry.config_class if entry is not None and len(loc) == 1 else None


def validate_experiment(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a resolved config dict (``OmegaConf.to_container(cfg, resolve=True)``).

    Raises:
        ConfigError: one sentence naming the key, the value and the allowed choices.
    """
    raw = dict(raw)
    raw.pop("hydra", None)
    for group in ("launcher", "experiment", "debug", "hparams_search"):
        raw.pop(group, None)  # selection-only groups, merged elsewhere
    attention = raw.get("attention")
    if isinstance(attention, dict):
        name = attention.get("name")
        if name not in registry_names():
            raise ConfigError(
                f"attention.name = {name!r} is invalid; choose one of: "
                f"{', '.join(registry_names())}"
            )
        raw["attention"] = _validate_node(parse_layer_config, attention, "attention", _mixer_owner)
    for key, validate, members in _owned_unions():
        if key in raw:
            raw[key] = _validate_node(validate, raw[key], key, _owner_by_name(members))

    def owner_of(_data: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
        return _field_model(ExperimentConfig, loc)

    return _validate_node(ExperimentConfig.model_validate, raw, "", owner_of)


def new_run_id() -> str:
    """A short random id that keeps two runs started in the same second apart."""
    return uuid.uuid4().hex[:6]


def variant_name(
    attention: str | None, attention_transform: str | None, model: str, model_transform: str | None
) -> str:
    """Variant label of docs/interfaces.md §4: ``softmax``, ``lst-dct`` (attention or model)."""
    if model == "lst":
        return f"lst-{model_transform or 'dct'}"
    label = f"lst-{attention_transform}" if attention == "lst" and attention_transform else None
    label = label or str(attention)
    return f"hybrid-{label}" if model == "hybrid" else label


def task_length(max_length: int | None, resolution: int | None) -> int:
    """Sequence length of a task node: ``max_length``, or ``resolution ** 2`` for images."""
    if max_length:
        return int(max_length)
    if resolution:
        return int(resolution) ** 2
    raise ValueError("task has neither max_length nor resolution; set task.max_length")


def register_resolvers() -> None:
    """Register the OmegaConf resolvers the conf tree uses (idempotent).

    - ``${run_id:}``: a 6-hex-digit random id, cached per config so one run sees one id.
    - ``${variant:att,att_transform,model,model_transform}``: see :func:`variant_name`.
    - ``${task_length:max_length,resolution}``: see :func:`task_length`.
    """
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("run_id"):
        OmegaConf.register_new_resolver("run_id", new_run_id, use_cache=True)
    if not OmegaConf.has_resolver("variant"):
        OmegaConf.register_new_resolver("variant", variant_name)
    if not OmegaConf.has_resolver("task_length"):
        OmegaConf.register_new_resolver("task_length", task_length)


register_resolvers()
