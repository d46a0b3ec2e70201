"""Cross-reference checks: every name used is defined, every step id unique.

These need no imports, so they run with ``--no-strict`` too: undefined job templates,
retry policies and middleware stacks (with "did you mean"), malformed dotted paths,
duplicate or reserved step ids, and malformed ``{field}`` key templates.
"""

from __future__ import annotations

import re
from typing import Any

from arvel_flow.pipeline.names import key_fields
from arvel_flow.pipeline.problems import Path, Problem, did_you_mean, format_path, is_dotted_path
from arvel_flow.pipeline.walk import (
    PipelineWalk,
    iter_exception_names,
    mapping,
    middleware_form,
    walk_pipeline,
)

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"{_IDENT}(?:\.{_IDENT})*(?::{_IDENT}(?:\.{_IDENT})*)?\Z")
_BUILTIN_MIDDLEWARE = ("rate_limited", "without_overlapping")
ROOT_KEY = "root"
"""The plan key of a root step without an id; no other step may take it as its id."""


def check_references(data: dict[str, Any], walk: PipelineWalk | None = None) -> list[Problem]:
    """Every undefined name, malformed path, duplicate id or malformed key template.

    ``walk``: `walk_pipeline` of ``data``, when the caller has it already.
    """
    walk = walk or walk_pipeline(data)
    problems: list[Problem] = []
    problems += _check_job_refs(data, walk)
    problems += _check_setting_refs(data, walk)
    problems += _check_ids(walk)
    problems += _check_middleware(walk)
    problems += _check_exception_names(walk)
    return problems


def placeholder_names(template: str) -> list[str]:
    """The job fields a ``{field}`` key template reads (bare names only, as at run time).

    Raises:
        ValueError: The template is malformed or a placeholder is not a field name.
    """
    return key_fields(template)


def is_well_formed(reference: str) -> bool:
    """Whether a class, function or exception reference has the shape of a path or name.

    Strict checks import only what passes: a malformed path is reported once, here.
    """
    return _DOTTED.match(reference) is not None


def _dotted_problem(path: Path, reference: str, what: str) -> Problem | None:
    if is_well_formed(reference) and is_dotted_path(reference):
        return None
    return Problem(path, f"{reference!r} is not a dotted path such as 'pkg.module:{what}'")


def _check_job_refs(data: dict[str, Any], walk: PipelineWalk) -> list[Problem]:
    problems: list[Problem] = []
    templates = mapping(data.get("jobs"))
    for name, template in templates.items():
        target = mapping(template).get("class")
        if isinstance(target, str):
            problem = _dotted_problem(("jobs", name, "class"), target, "ClassName")
            problems += [problem] if problem else []
    for at in walk.steps:
        reference = at.step.get("job")
        if not isinstance(reference, str) or not reference:
            continue
        path = (*at.path, "job")
        if is_dotted_path(reference):
            problem = _dotted_problem(path, reference, "ClassName")
            problems += [problem] if problem else []
        elif reference not in templates:
            hint = did_you_mean(reference, templates) or (
                "; name a template under 'jobs', or a class by dotted path "
                "such as 'pkg.module:ClassName'"
            )
            problems.append(Problem(path, f"undefined job template {reference!r}{hint}"))
    return problems


def _check_setting_refs(data: dict[str, Any], walk: PipelineWalk) -> list[Problem]:
    problems: list[Problem] = []
    policies = mapping(data.get("retry_policies"))
    stacks = mapping(data.get("middleware_stacks"))
    for path, settings in walk.settings:
        retry = settings.get("retry")
        if isinstance(retry, str) and retry not in policies:
            hint = did_you_mean(retry, policies) or "; define it under 'retry_policies'"
            problems.append(Problem((*path, "retry"), f"undefined retry policy {retry!r}{hint}"))
        entries = settings.get("middleware")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, str) and entry not in stacks:
                hint = did_you_mean(entry, stacks) or "; define it under 'middleware_stacks'"
                problems.append(
                    Problem(
                        (*path, "middleware", index), f"undefined middleware stack {entry!r}{hint}"
                    )
                )
        unique_id = settings.get("unique_id")
        if isinstance(unique_id, str):
            problems += _key_template_problems((*path, "unique_id"), unique_id)
    return problems


def _check_ids(walk: PipelineWalk) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for at in walk.steps:
        step_id = at.step.get("id")
        if not isinstance(step_id, str):
            continue
        if step_id in seen:
            problems.append(
                Problem(
                    (*at.path, "id"),
                    f"duplicate step id {step_id!r} (first used at {format_path(seen[step_id])})",
                )
            )
        elif step_id == ROOT_KEY and not at.root:
            problems.append(
                Problem((*at.path, "id"), "step id 'root' is reserved for the top-level step")
            )
        seen.setdefault(step_id, at.path)
    return problems


def _check_middleware(walk: PipelineWalk) -> list[Problem]:
    problems: list[Problem] = []
    for path, entry in walk.inline_middleware:
        form = middleware_form(entry)
        if form is None:
            continue
        use, kwargs, kwargs_path = form
        if "use" in entry and use not in _BUILTIN_MIDDLEWARE:
            problem = _dotted_problem((*path, "use"), use, "MiddlewareClass")
            if problem is not None and not is_dotted_path(use):
                hint = (
                    did_you_mean(use, _BUILTIN_MIDDLEWARE)
                    or " or a builtin (rate_limited, without_overlapping)"
                )
                problem = Problem(problem.path, problem.message + hint)
            problems += [problem] if problem else []
        key = kwargs.get("key")
        if use in _BUILTIN_MIDDLEWARE and isinstance(key, str):
            problems += _key_template_problems((*path, *kwargs_path, "key"), key)
    return problems


def _check_exception_names(walk: PipelineWalk) -> list[Problem]:
    return [
        Problem(
            path,
            f"{name!r} is not an exception name such as 'ConnectionError' or 'pkg.module:MyError'",
        )
        for path, name in iter_exception_names(walk.retry_policies)
        if name and not _DOTTED.match(name)
    ]


def _key_template_problems(path: Path, template: str) -> list[Problem]:
    try:
        placeholder_names(template)
    except ValueError as error:
        return [Problem(path, f"malformed key template {template!r}: {error}")]
    return []
