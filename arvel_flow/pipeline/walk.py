"""Tolerant traversal of raw pipeline data, for the checks that follow validation.

Cross-reference and strict checks read the plain data rather than the validated
models, so that they still run, and report, when some other part of the file is
invalid: every problem in one pass. Whatever has the wrong shape is skipped here;
schema validation reports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from arvel_flow.pipeline.problems import Path

STEP_KINDS = ("job", "chain", "batch")
CALLBACKS = ("then", "catch", "finally")
BUILTIN_FORMS = ("rate_limited", "without_overlapping")


@dataclass(frozen=True, slots=True)
class StepAt:
    """A step mapping and its path; ``root`` for the top-level ``pipeline`` step."""

    path: Path
    step: dict[str, Any]
    root: bool = False


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def iter_steps(data: dict[str, Any]) -> Iterator[StepAt]:
    """Every step mapping of the pipeline, depth first, callbacks after members.

    A loop over a stack, not generators nested as deep as the steps: every check of a
    file walks it, and a file may hold thousands of steps.
    """
    root = data.get("pipeline")
    if not isinstance(root, dict):
        return
    stack: list[tuple[dict[str, Any], Path, bool]] = [(root, ("pipeline",), True)]
    while stack:
        step, path, is_root = stack.pop()
        yield StepAt(path, step, is_root)
        children: list[tuple[dict[str, Any], Path, bool]] = []
        for kind in ("chain", "batch"):
            members = step.get(kind)
            if isinstance(members, list):
                children += [
                    (child, (*path, kind, index), False)
                    for index, child in enumerate(members)
                    if isinstance(child, dict)
                ]
        for callback in CALLBACKS:
            child = step.get(callback)
            if isinstance(child, dict):
                children.append((child, (*path, callback), False))
        stack += reversed(children)


def iter_job_steps(data: dict[str, Any]) -> Iterator[StepAt]:
    """Every job step (a step with ``job:``)."""
    return (at for at in iter_steps(data) if "job" in at.step)


def iter_settings(
    data: dict[str, Any], job_steps: Iterable[StepAt] | None = None
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every mapping that may hold job settings: defaults, templates, job steps.

    ``job_steps``: those of ``data``, when already found (`walk_pipeline`).
    """
    defaults = data.get("defaults")
    if isinstance(defaults, dict):
        yield ("defaults",), defaults
    for name, template in mapping(data.get("jobs")).items():
        if isinstance(template, dict):
            yield ("jobs", name), template
    for at in iter_job_steps(data) if job_steps is None else job_steps:
        yield at.path, at.step


Found = tuple[tuple[Path, dict[str, Any]], ...]
"""Mappings found in the document, each with its path."""


def iter_inline_middleware(
    data: dict[str, Any], settings: Found | None = None
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every middleware defined in place: in stacks and in ``middleware`` lists.

    ``settings``: the `iter_settings` of ``data``, when already found.
    """
    for name, stack in mapping(data.get("middleware_stacks")).items():
        if isinstance(stack, list):
            for index, entry in enumerate(stack):
                if isinstance(entry, dict):
                    yield ("middleware_stacks", name, index), entry
    for path, found in iter_settings(data) if settings is None else settings:
        entries = found.get("middleware")
        if isinstance(entries, list):
            for index, entry in enumerate(entries):
                if isinstance(entry, dict):
                    yield (*path, "middleware", index), entry


def iter_retry_policies(
    data: dict[str, Any], settings: Found | None = None
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every retry policy: named ones and those defined in place under ``retry``.

    ``settings``: the `iter_settings` of ``data``, when already found.
    """
    for name, policy in mapping(data.get("retry_policies")).items():
        if isinstance(policy, dict):
            yield ("retry_policies", name), policy
    for path, found in iter_settings(data) if settings is None else settings:
        policy = found.get("retry")
        if isinstance(policy, dict):
            yield (*path, "retry"), policy


@dataclass(frozen=True, slots=True)
class PipelineWalk:
    """What the checks after validation read, found in one walk of the document.

    Every check (secrets, references, strict) reads the steps; a file of thousands of
    steps was walked eight times before, once here.
    """

    data: dict[str, Any]
    steps: tuple[StepAt, ...]
    """`iter_steps`."""
    job_steps: tuple[StepAt, ...]
    """`iter_job_steps`."""
    settings: Found
    """`iter_settings`."""
    inline_middleware: Found
    """`iter_inline_middleware`."""
    retry_policies: Found
    """`iter_retry_policies`."""


def walk_pipeline(data: dict[str, Any]) -> PipelineWalk:
    """Walk the document once for every check that follows (see `PipelineWalk`)."""
    steps = tuple(iter_steps(data))
    job_steps = tuple(at for at in steps if "job" in at.step)
    settings = tuple(iter_settings(data, job_steps))
    return PipelineWalk(
        data,
        steps,
        job_steps,
        settings,
        tuple(iter_inline_middleware(data, settings)),
        tuple(iter_retry_policies(data, settings)),
    )


def iter_exception_names(retry_policies: Found) -> Iterator[tuple[Path, str]]:
    """Every exception name of the ``retry_on`` and ``dont_retry_on`` of ``retry_policies``
    (`PipelineWalk.retry_policies`)."""
    for path, policy in retry_policies:
        for field in ("retry_on", "dont_retry_on"):
            names = policy.get(field)
            for index, name in enumerate(names if isinstance(names, list) else []):
                if isinstance(name, str):
                    yield (*path, field, index), name


def middleware_form(entry: dict[str, Any]) -> tuple[str, dict[str, Any], Path] | None:
    """``(use, kwargs, path of kwargs)`` of an inline middleware, None if malformed."""
    if isinstance(entry.get("use"), str):
        return entry["use"], mapping(entry.get("with")), ("with",)
    for name in BUILTIN_FORMS:
        if name in entry:
            return name, mapping(entry.get(name)), (name,)
    return None
