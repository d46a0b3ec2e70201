"""Pydantic validation errors → `Problem` objects a user can act on.

Each error's ``loc`` is walked along the model types: union tags (``<job>``, ...) are
dropped from the path, and the model at the end of the path gives the keys allowed
there, for "did you mean" suggestions. Messages that would leak class names or
Pydantic jargon are rewritten.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from arvel_flow.pipeline.models import BatchStepSpec, ChainStepSpec, JobStepSpec, PipelineSpec
from arvel_flow.pipeline.problems import MAX_PROBLEMS, Path, Problem, did_you_mean
from arvel_flow.pipeline.walk import STEP_KINDS
from arvel_flow.scalars import resolve_plain

_STEP_MODELS = (JobStepSpec, ChainStepSpec, BatchStepSpec)
_REF_SECTIONS = ("jobs", "retry_policies", "middleware_stacks")
_PATTERN_HINTS = {
    "name": "a pipeline name uses lowercase letters, digits, '_', '.' and '-', and starts with "
    "a letter or digit",
    "id": "a step id uses letters, digits, '_' and '-' (it becomes a plan key, where '.' and '[' "
    "separate parts)",
    "ref": "names of templates, policies and stacks use letters, digits, '_' and '-' and start "
    "with a letter or '_' (a dotted name would read as a class path)",
    "vars": "variable names use letters, digits and '_', and do not start with a digit",
}
_EMPTY_HINTS = {
    "chain": "a chain needs at least one step",
    "batch": "a batch needs at least one member",
    "each": "'each' needs at least one item",
    "matrix": "'matrix' needs at least one parameter",
    "backoff": "a backoff list needs at least one wait",
}
_BACKOFF_HINT = "Input should be seconds, a duration such as 90s, a list of those, or 'exponential'"
_TYPE_HINTS = {
    "model_type": "Input should be a mapping",
    "model_attributes_type": "Input should be a mapping",
    "dict_type": "Input should be a mapping",
    "list_type": "Input should be a list",
}


def problems_from_validation(
    error: ValidationError, data: Mapping[str, Any], *, limit: int = MAX_PROBLEMS
) -> tuple[list[Problem], int]:
    """The errors of a `PipelineSpec` validation, as problems at document paths.

    Returns:
        Problems for the first ``limit`` errors (Pydantic lists them in document
        order), and how many errors were left out.
    """
    details = error.errors(include_url=False)
    located = [(*_walk(detail["loc"]), detail) for detail in details[:limit]]
    extras: dict[Path, list[str]] = {}
    for path, _, detail in located:
        if detail["type"] == "extra_forbidden":
            extras.setdefault(path[:-1], []).append(str(path[-1]))
    problems: list[Problem] = []
    for path, annotation, detail in located:
        if detail["type"] == "missing" and _is_typo_of(str(path[-1]), extras.get(path[:-1], [])):
            continue  # "unknown key 'clas'; did you mean 'class'?" already says it
        problems.append(_problem(path, annotation, detail, data))
    return problems, len(details) - len(located)


def _is_typo_of(missing: str, extra_keys: list[str]) -> bool:
    return any(did_you_mean(key, [missing]) for key in extra_keys)


def _problem(path: Path, annotation: Any, detail: ErrorDetails, data: Mapping[str, Any]) -> Problem:
    kind, message = detail["type"], detail["msg"]
    if kind == "extra_forbidden":
        return _unknown_key(path, _model_at(detail["loc"][:-1]))
    if kind == "missing":
        return Problem(path, f"missing required key {path[-1]!r}", at="parent")
    if kind == "step_kind":
        return _not_a_step(path, _value_at(data, path), message)
    if kind == "fan_out":
        return Problem((*path, "matrix"), message, at="key")
    if path and path[-1] == "[key]":
        return Problem(path[:-1], _PATTERN_HINTS["vars" if path[0] == "vars" else "ref"], at="key")
    if kind == "string_pattern_mismatch":
        return Problem(path, _PATTERN_HINTS.get(str(path[-1]), message))
    if kind == "duration" and path[-1] == "backoff":
        value = detail.get("input")
        hint = did_you_mean(value, ["exponential"]) if isinstance(value, str) else ""
        return Problem(path, _BACKOFF_HINT + hint)
    if kind == "too_short":
        field = path[-2] if len(path) > 1 and path[-2] == "matrix" else path[-1]
        hint = (
            f"matrix parameter {path[-1]!r} needs at least one value"
            if field == "matrix" and path[-1] != "matrix"
            else _EMPTY_HINTS.get(str(field), message)
        )
        return Problem(path, hint)
    if kind == "literal_error":
        value = detail.get("input")
        choices = [str(choice) for choice in get_args(annotation)]
        return Problem(
            path, message + (did_you_mean(value, choices) if isinstance(value, str) else "")
        )
    return Problem(path, _TYPE_HINTS.get(kind, message) + _quoted_hint(kind, detail.get("input")))


def _quoted_hint(kind: str, value: Any) -> str:
    """Say so when a value of the right kind was quoted, which made it a string."""
    typed = kind in ("int_type", "float_type", "bool_type") and isinstance(value, str) and value
    if typed and not isinstance(resolve_plain(value), str):
        return f" ({value!r} is quoted, which makes it a string)"
    return ""


def _unknown_key(path: Path, model: type[BaseModel] | None) -> Problem:
    key = str(path[-1])
    if model is None:
        return Problem(path, f"unknown key {key!r}", at="key")
    allowed = _keys(model)
    if model in _STEP_MODELS:
        if key in STEP_KINDS:
            message = (
                f"a step is exactly one of 'job', 'chain' or 'batch'; this one also has {key!r}"
            )
            return Problem(path, message, at="key")
        owners = [other for other in _STEP_MODELS if other is not model and key in _keys(other)]
        if owners:
            kinds = " or ".join(f"{_step_kind_of(owner)} steps" for owner in owners)
            this = _step_kind_of(model)
            message = f"{key!r} belongs to {kinds}; a {this} step takes {', '.join(allowed)}"
            return Problem(path, message, at="key")
    hint = did_you_mean(key, allowed) or f" (allowed here: {', '.join(allowed)})"
    return Problem(path, f"unknown key {key!r}{hint}", at="key")


def _keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _step_kind_of(model: type[BaseModel]) -> str:
    return {JobStepSpec: "job", ChainStepSpec: "chain", BatchStepSpec: "batch"}[model]


def _not_a_step(path: Path, value: Any, message: str) -> Problem:
    if not isinstance(value, dict):
        return Problem(path, message)
    for key in value:
        hint = did_you_mean(str(key), STEP_KINDS)
        if hint:
            return Problem((*path, key), f"unknown key {key!r}{hint} ({message})", at="key")
    return Problem(path, message)


def _value_at(data: Any, path: Path) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    annotation = _walk(loc)[1]
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _walk(loc: tuple[int | str, ...]) -> tuple[Path, Any]:
    """The document path of an error location, and the type expected at its end."""
    annotation: Any = PipelineSpec
    path: list[str | int] = []
    for part in loc:
        annotation, tags = _unwrap(annotation)
        if tags is not None and part in tags:
            annotation = tags[str(part)]
            continue
        path.append(part)
        annotation = _child_type(annotation, part)
    return tuple(path), _unwrap(annotation)[0]


def _child_type(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return Any
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and part != "[key]":
        return args[1]
    if origin is list and isinstance(part, int):
        return args[0]
    return Any


def _unwrap(annotation: Any) -> tuple[Any, dict[str, Any] | None]:
    """Strip ``Annotated`` and ``| None``; for a tagged union, also its members by tag.

    Pydantic moves a field's own ``Annotated`` metadata (the discriminator with it)
    out of ``FieldInfo.annotation``, so a union is recognised by its tagged members.
    """
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            tags = dict(_tagged_members(annotation))
            if tags:
                return annotation, tags
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation, None
            annotation = members[0]
        else:
            return annotation, None


def _tagged_members(union: Any) -> Iterator[tuple[str, Any]]:
    for member in get_args(union):
        for meta in get_args(member)[1:]:
            if isinstance(meta, Tag):
                yield meta.tag, member
