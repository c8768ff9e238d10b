"""One pydantic error as one sentence: ``<key> = <value> is invalid; <what to do>``."""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel


class ConfigError(ValueError):
    """An invalid experiment config; the message is one sentence for the user."""


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic classes an annotation admits (through ``Annotated``, unions, ``None``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(typing.get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [cls for arg in typing.get_args(annotation) for cls in _model_classes(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _tag(node: Any) -> Any:
    return node.get("name") if isinstance(node, dict) else None


def _member(members: list[type[BaseModel]], node: Any) -> type[BaseModel] | None:
    """The class among ``members`` that validates ``node``.

    That is the only member, or the one whose ``name`` literal is the node's ``name``.
    """
    if len(members) == 1:
        return members[0]
    for member in members:
        field = member.model_fields.get("name")
        if field is not None and field.default == _tag(node):
            return member
    return None


def locate(
    root: type[BaseModel], data: Any, loc: tuple[Any, ...]
) -> tuple[list[str], type[BaseModel] | None]:
    """The user's key path of an error and the class that owns its last key.

    Pydantic puts the union tag into the location of an error inside a discriminated union
    (``attention.softmax.num_heads``); the user wrote ``attention.num_heads``, so the tag is
    dropped. The owner lists the allowed keys of an unknown key.
    """
    path: list[str] = []
    owner: type[BaseModel] | None = root
    node, parts, i = data, list(loc), 0
    while i < len(parts):
        part = parts[i]
        path.append(str(part))
        field = owner.model_fields.get(str(part)) if owner is not None else None
        if field is None:
            path.extend(str(p) for p in parts[i + 1 :])
            return path, owner if i == len(parts) - 1 else None
        node = node.get(part) if isinstance(node, dict) else None
        members = _model_classes(field.annotation)
        if len(members) > 1 and i + 1 < len(parts) and parts[i + 1] == _tag(node):
            i += 1
        if i == len(parts) - 1:
            return path, owner
        owner = _member(members, node)
        i += 1
    return path, owner


def _expected(ctx: dict[str, Any]) -> str:
    return str(ctx.get("expected_tags") or ctx.get("expected") or "").replace("'", "")


def error_sentence(error: Any, root: type[BaseModel], data: Any) -> str:
    """Format one pydantic error of ``root.model_validate(data)`` as one sentence."""
    path, owner = locate(root, data, tuple(error.get("loc", ())))
    key = ".".join(path)
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "extra_forbidden":
        allowed = ", ".join(owner.model_fields) if owner is not None else ""
        hint = f"; allowed keys: {allowed}" if allowed else ""
        return f"{key} = {value!r} is an unknown key{hint}"
    if kind == "union_tag_invalid":
        tag_key = f"{key}.name" if key else "name"
        return f"{tag_key} = {ctx.get('tag')!r} is invalid; choose one of: {_expected(ctx)}"
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
