"""Checks keyword arguments against a callable's signature, types included.

Used for middleware constructors: the signature becomes a Pydantic model (string
annotations evaluated in the callable's module), so ``max_attempts: "ten"`` is
reported at its position, as a wrong job parameter would be.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict

from arvel_flow.pipeline.problems import Path, Problem, did_you_mean
from arvel_flow.secrets import resolve_for_check


@dataclass(frozen=True, slots=True)
class _Signature:
    """What a callable accepts: names, which are required, their types when usable."""

    names: frozenset[str]
    required: frozenset[str]
    open_ended: bool
    model: type[BaseModel] | None


def check_call(
    function: Callable[..., Any],
    kwargs: Mapping[str, Any],
    path: Path,
    label: str,
    *,
    env: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every unknown, missing or mistyped keyword argument of ``function(**kwargs)``.

    Args:
        function: A class (its constructor is checked) or a function.
        kwargs: The arguments the file gives, by name.
        path: Where those arguments are in the document.
        label: How to name the callable in messages, such as ``pkg.Audit()``.
        env: Resolves secret references in memory for the type checks (default:
            ``os.environ``); an unset one is not checked.
    """
    try:
        signature = _signature(function)
    except (TypeError, ValueError):
        return []  # no introspectable signature (a builtin): nothing to check against
    problems: list[Problem] = []
    if not signature.open_ended:
        problems += [
            Problem(
                (*path, name),
                f"unknown argument {name!r} of {label}{did_you_mean(name, signature.names)}",
                at="key",
            )
            for name in kwargs
            if name not in signature.names
        ]
    problems += [
        Problem(path, f"missing argument {name!r} of {label}", at="parent")
        for name in sorted(signature.required - set(kwargs))
    ]
    return problems + _type_problems(signature, kwargs, path, label, env)


def _type_problems(
    signature: _Signature,
    kwargs: Mapping[str, Any],
    path: Path,
    label: str,
    env: Mapping[str, str] | None,
) -> list[Problem]:
    if signature.model is None:
        return []
    given: dict[str, Any] = {}
    for name, value in kwargs.items():
        resolved, ok = resolve_for_check(value, env)  # in memory, for this check only
        if name in signature.names and ok:
            given[name] = resolved
    try:
        signature.model.model_validate(given)
    except pydantic.ValidationError as error:
        return [
            Problem(
                (*path, *detail["loc"]),
                f"{detail['msg']} (argument {detail['loc'][0]!r} of {label})",
            )
            for detail in error.errors(include_url=False)
            if detail["type"] != "missing"
        ]
    return []


@functools.lru_cache(maxsize=256)
def _signature(function: Callable[..., Any]) -> _Signature:
    try:
        signature = inspect.signature(function, eval_str=True)
    except NameError:  # an annotation that only exists under TYPE_CHECKING
        signature = inspect.signature(function)
    fields: dict[str, Any] = {}
    open_ended = False
    for name, parameter in signature.parameters.items():
        open_ended = open_ended or parameter.kind is parameter.VAR_KEYWORD
        if parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
            parameter.POSITIONAL_ONLY,
        ):
            continue
        annotation = parameter.annotation
        if annotation is parameter.empty or isinstance(annotation, str):
            annotation = Any
        fields[name] = (
            annotation,
            ... if parameter.default is parameter.empty else parameter.default,
        )
    required = frozenset(name for name, (_, default) in fields.items() if default is ...)
    return _Signature(frozenset(fields), required, open_ended, _model(function, fields))


def _model(function: Callable[..., Any], fields: dict[str, Any]) -> type[BaseModel] | None:
    """A model of the parameters, or None when their names or types do not make one."""
    name = f"{getattr(function, '__qualname__', 'callable')}Arguments"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a parameter named like a BaseModel attribute
            model: type[BaseModel] = pydantic.create_model(
                name, __config__=ConfigDict(arbitrary_types_allowed=True), **fields
            )
    except (NameError, TypeError, ValueError, pydantic.PydanticUserError):
        return None
    return model
