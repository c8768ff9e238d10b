"""The OmegaConf resolvers of the conf tree: run id, variant name and task length."""

from __future__ import annotations

from experiments.config.run_id import new_run_id


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
