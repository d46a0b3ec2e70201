"""Strict checks of job parameters against the job's own model, at their YAML positions.

``with`` is validated once; ``each`` items in one bulk `TypeAdapter` call, so 100,000
items take well under a second; ``matrix`` one value at a time rather than every
combination (fields are validated independently, so this finds every bad value in
``sum(len(axis))`` validations instead of ``product(len(axis))``).
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, TypeAdapter

from arvel_flow.job_settings import RETRY_KEYS, STEP_KEYS
from arvel_flow.pipeline.problems import Path, Problem, did_you_mean
from arvel_flow.pipeline.secret_checks import HOW_TO_REFER
from arvel_flow.queue.job import JOB_SETTING_FIELDS
from arvel_flow.queue.redaction import declared_secret_fields
from arvel_flow.queue.targets import JobTarget
from arvel_flow.secrets import is_secret_field_name, is_secret_marker, resolve_for_check

MAX_ITEM_PROBLEMS = 20
"""Problems reported per fan-out before summing up the rest in one line."""

_RETRY_ONLY = frozenset(RETRY_KEYS) - frozenset(STEP_KEYS)
"""Settings the file sets only under ``retry``."""


@dataclass(frozen=True, slots=True)
class Params:
    """Parameters of one job step: values, and the path that defined each."""

    values: dict[str, Any]
    origins: dict[str, Path]
    step: Path


@dataclass(frozen=True, slots=True)
class _Probe:
    """One set of parameters to validate, and where each of its values was written.

    For an ``each`` item, ``own`` is the item and its values sit under ``prefix``; for a
    matrix probe, ``own`` maps each axis to the path of the value tried.
    """

    values: dict[str, Any]
    own: Mapping[str, Any]
    prefix: Path | None
    missing_at: Path

    def where(self, name: str, origins: Mapping[str, Path]) -> Path:
        """Where the value of ``name`` in this probe was written."""
        if name in self.own:
            if self.prefix is not None:
                return (*self.prefix, name)
            path: Path = self.own[name]
            return path
        return origins[name]


def check_params(
    target: JobTarget,
    params: Params,
    step: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every unknown, missing or mistyped parameter of a job step, fan-outs included.

    A secret reference is checked with its value from ``env`` (default: ``os.environ``),
    resolved in memory for this check only; an unset one is not checked.
    """
    shape = _shape_of(target)
    known = set(shape.known)
    clear = _clear_secrets(target, shape, params, step.get("each"), step.get("matrix"))
    params, each, matrix, unresolved = _resolved(params, step.get("each"), step.get("matrix"), env)
    if shape.any_keyword:  # a function or plain class with **kwargs accepts any name
        known |= set(params.values) | set(matrix if isinstance(matrix, dict) else ())
        known |= {
            key
            for item in (each if isinstance(each, list) else ())
            if isinstance(item, dict)
            for key in item
        }
    problems = clear + [
        _unknown(target, name, params.origins[name], known)
        for name in params.values
        if name not in known
    ]
    base = {name: value for name, value in params.values.items() if name in known}
    if isinstance(each, list) and each:
        return problems + _check_each(target, params, base, each, known, unresolved)
    if isinstance(matrix, dict) and matrix:
        return problems + _check_matrix(target, params, base, matrix, known, unresolved)
    if "each" in step or "matrix" in step:
        return problems  # a malformed or dropped fan-out: reported already
    probe = _Probe(base, {}, None, (*params.step, "job"))
    return problems + _validate(target, params, [probe], ignore=unresolved)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the checks need to know of a job's parameters: read once per target.

    A file of thousands of steps names a few dozen classes; reading each class's fields
    once per step was most of what strict validation cost.
    """

    known: frozenset[str]
    """The names it accepts as parameters: a Job's settings are fields of its model,
    but set through 'with' they would bypass the merge of defaults, templates and
    steps; they are reported, not accepted."""
    typed_secrets: frozenset[str]
    """Its `SecretStr` fields not named like secrets (only the class says they are)."""
    any_keyword: bool
    """A function or plain class with ``**kwargs``: any name is accepted."""


@functools.lru_cache(maxsize=1024)
def _shape_of(target: JobTarget) -> _Shape:
    settings = frozenset(JOB_SETTING_FIELDS) if target.kind != "function" else frozenset()
    typed_secrets = frozenset(
        name
        for name in declared_secret_fields(target.params_model)
        if not is_secret_field_name(name)
    )
    known = frozenset(target.parameter_names()) - settings
    return _Shape(known, typed_secrets, _takes_any_keyword(target))


def _clear_secrets(
    target: JobTarget, shape: _Shape, params: Params, each: Any, matrix: Any
) -> list[Problem]:
    """Values written in the file for the job's `SecretStr` fields (stored with the run).

    Fields named like secrets are reported by the checks every validation runs; these
    are the ones only the job's class says are secret.
    """
    names = shape.typed_secrets
    if not names:
        return []
    found = [(params.origins[n], params.values[n]) for n in names if n in params.values]
    for index, item in enumerate(each if isinstance(each, list) else []):
        if isinstance(item, dict):
            found += [((*params.step, "each", index, n), item[n]) for n in names if n in item]
    if isinstance(matrix, dict):
        found += [((*params.step, "matrix", n), matrix[n]) for n in names if n in matrix]
    return [
        Problem(
            path,
            f"parameter {path[-1]!r} is a secret of {target.path} (a SecretStr), so its "
            f"value may not be written in the file, where it would be stored with the run: "
            f"{HOW_TO_REFER}",
        )
        for path, value in found
        if not is_secret_marker(value)
        and not (isinstance(value, list) and all(map(is_secret_marker, value)))
    ]


def _resolved(
    params: Params, each: Any, matrix: Any, env: Mapping[str, str] | None
) -> tuple[Params, Any, Any, set[str]]:
    """Parameters with secret references resolved in memory, to check their types.

    A reference this process cannot resolve leaves its parameter unchecked: its name is
    in the returned set. The values resolved are used for this check only.
    """
    unresolved: set[str] = set()

    def resolve(name: Any, value: Any) -> Any:
        if not isinstance(value, dict | list):
            return value  # a scalar holds no reference: most values of a 100,000-item fan-out
        found, ok = resolve_for_check(value, env)
        if not ok:
            unresolved.add(str(name))
        return found

    def resolve_item(item: Any) -> Any:
        # A copy only for an item holding a reference: 100,000 items are not duplicated.
        if not isinstance(item, dict):
            return item
        resolved = {k: resolve(k, v) for k, v in item.items()}
        return item if all(resolved[k] is v for k, v in item.items()) else resolved

    def resolve_axis(name: str, axis: list[Any]) -> list[Any]:
        # A copy only from the first value that changes: a long axis is not duplicated.
        copied: list[Any] | None = None
        for index, value in enumerate(axis):
            found = resolve(name, value)
            if copied is None and found is not value:
                copied = axis[:index]
            if copied is not None:
                copied.append(found)
        return axis if copied is None else copied

    values = {name: resolve(name, value) for name, value in params.values.items()}
    if isinstance(each, list):
        each = [resolve_item(item) for item in each]
    if isinstance(matrix, dict):
        matrix = {
            name: resolve_axis(name, axis) if isinstance(axis, list) else axis
            for name, axis in matrix.items()
        }
    return Params(values, params.origins, params.step), each, matrix, unresolved


def _takes_any_keyword(target: JobTarget) -> bool:
    if target.kind not in ("function", "plain"):
        return False
    try:
        parameters = inspect.signature(target.obj).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters)


def _unknown(target: JobTarget, name: str, path: Path, known: set[str]) -> Problem:
    if name in JOB_SETTING_FIELDS and target.kind != "function":
        where = "under 'retry'" if name in _RETRY_ONLY else "on the step itself, not under 'with'"
        return Problem(
            path, f"{name!r} is a job setting, not a parameter: set it {where}", at="key"
        )
    hint = did_you_mean(name, known - set(JOB_SETTING_FIELDS))
    return Problem(path, f"unknown parameter {name!r} of {target.path}{hint}", at="key")


_CHUNK = 1_000
"""``each`` items validated per call."""


def _check_each(
    target: JobTarget,
    params: Params,
    base: dict[str, Any],
    items: list[Any],
    known: set[str],
    unresolved: set[str],
) -> list[Problem]:
    problems: list[Problem] = []

    def probes() -> Iterator[_Probe]:
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue  # schema validation reports it
            path = (*params.step, "each", index)
            problems.extend(
                _unknown(target, str(k), (*path, k), known) for k in item if k not in known
            )
            values = {**base, **{k: v for k, v in item.items() if k in known}}
            yield _Probe(values, item, path, path)

    invalid = _validate(target, params, probes(), ignore=unresolved)
    return _capped(problems + invalid, (*params.step, "each"))


def _check_matrix(
    target: JobTarget,
    params: Params,
    base: dict[str, Any],
    axes: dict[str, Any],
    known: set[str],
    unresolved: set[str],
) -> list[Problem]:
    path = (*params.step, "matrix")
    problems = [_unknown(target, name, (*path, name), known) for name in axes if name not in known]
    malformed = {name for name, values in axes.items() if not (isinstance(values, list) and values)}
    axes = {
        name: values for name, values in axes.items() if name in known and name not in malformed
    }
    first = {**base, **{name: values[0] for name, values in axes.items()}}
    first_paths = {name: (*path, name, 0) for name in axes}
    missing_at = (*params.step, "job")

    def probes() -> Iterator[_Probe]:
        yield _Probe(first, first_paths, None, missing_at)
        for name, values in axes.items():
            for index, value in enumerate(values[1:], 1):
                where = {**first_paths, name: (*path, name, index)}
                yield _Probe({**first, name: value}, where, None, missing_at)

    ignore = malformed | unresolved
    return _capped(problems + _validate(target, params, probes(), ignore=ignore), path)


def _validate(
    target: JobTarget, params: Params, probes: Iterable[_Probe], *, ignore: set[str] | None = None
) -> list[Problem]:
    """Validate the probes a chunk per call; map each error to where its value was written.

    Chunks keep memory flat: validating 100,000 items in one call would hold 100,000
    job models at once. Errors about names in ``ignore`` (malformed matrix axes,
    reported by the schema checks) are left out.
    """
    adapter = _list_adapter(target.params_model)
    problems: dict[tuple[Path, str], Problem] = {}
    iterator = iter(probes)
    while chunk := list(itertools.islice(iterator, _CHUNK)):
        try:
            adapter.validate_python([probe.values for probe in chunk])
        except pydantic.ValidationError as error:
            for detail in error.errors(include_url=False):
                index, name, *rest = detail["loc"]
                probe = chunk[int(index)]
                if ignore and str(name) in ignore:
                    continue
                if str(name) not in probe.values:
                    message = f"missing parameter {name!r} of {target.path}"
                    problem = Problem(probe.missing_at, message)
                else:
                    where = probe.where(str(name), params.origins)
                    problem = Problem((*where, *rest), f"{detail['msg']} (parameter {name!r})")
                problems.setdefault((problem.path, problem.message), problem)
    return list(problems.values())


def _capped(problems: list[Problem], path: Path) -> list[Problem]:
    if len(problems) <= MAX_ITEM_PROBLEMS:
        return problems
    more = len(problems) - MAX_ITEM_PROBLEMS
    return [
        *problems[:MAX_ITEM_PROBLEMS],
        Problem(path, f"... and {more:,} more problems in these items", at="key"),
    ]


@functools.lru_cache(maxsize=256)
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]
