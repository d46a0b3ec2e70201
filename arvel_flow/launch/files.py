"""Pipeline files as runs see them: compiled to a plan, fingerprinted, checked for drift."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from arvel_flow.queue.plan import Plan


def compile_file(path: str, set_vars: Mapping[str, Any]) -> tuple[Plan, Mapping[str, Any]]:
    """The plan of a pipeline file and its ``queue:`` section (with its ``observers:``).

    The plan remembers the file it came from and a digest of its bytes, so that a
    resume can tell when the file changed since (`describe_drift`).

    Raises:
        ConfigError: The file is invalid (every problem, each with its position).
    """
    from arvel_flow.compiler import compile_plan, load_pipeline

    spec = load_pipeline(path, set_vars=set_vars)
    plan = compile_plan(spec)
    plan = dataclasses.replace(plan, origin=str(Path(path).resolve()), digest=file_digest(path))
    section = spec.queue.model_dump(exclude_none=True)
    if spec.observers:
        section["observers"] = tuple(spec.observers)
    return plan, section


def file_digest(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def describe_drift(plan: Plan) -> str | None:
    """A note when the file a stored plan came from has changed since."""
    if plan.origin is None or plan.digest is None:
        return None
    current = file_digest(plan.origin)
    if current == plan.digest:
        return None
    change = "is gone" if current is None else "changed"
    return f"{plan.origin} {change} since this run started; resuming the plan it started with"
