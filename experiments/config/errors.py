"""One pydantic error as one sentence: ``<key> = <value> is invalid; <what to do>``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """An invalid experiment config; the message is one sentence for the user."""


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
