"""The compiler layer: validated specs → the `Chain` / `Batch` graph, and strict checks.

It sits above the file format (`arvel_flow.pipeline`, which imports no runtime module)
and the runtime, and is the one place that joins them: ``graph`` compiles a
`PipelineSpec` into the `Plan` to run (`compile_plan`) or the `Chain` / `Batch` graph
of the Python API (`compile_pipeline`); ``strict``, ``params`` and ``signatures`` import
what a file names and check it; ``load`` runs the file format's loader with those
checks as its last pass (`load_pipeline`).

Names are imported on first use, as in `arvel_flow`: validating a file
(``arvel-flow validate``, a pre-commit hook) loads neither the graph's runtime nor,
with ``--no-strict``, the strict checks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arvel_flow.compiler.graph import (
        Step,
        class_settings,
        compile_pipeline,
        compile_plan,
        compute_job_ref,
        middleware_ref,
    )
    from arvel_flow.compiler.load import load_pipeline, parse_pipeline

_EXPORTS: dict[str, str] = {
    "Step": "arvel_flow.compiler.graph",
    "class_settings": "arvel_flow.compiler.graph",
    "compile_pipeline": "arvel_flow.compiler.graph",
    "compile_plan": "arvel_flow.compiler.graph",
    "compute_job_ref": "arvel_flow.compiler.graph",
    "load_pipeline": "arvel_flow.compiler.load",
    "middleware_ref": "arvel_flow.compiler.graph",
    "parse_pipeline": "arvel_flow.compiler.load",
}

__all__ = [
    "Step",
    "class_settings",
    "compile_pipeline",
    "compile_plan",
    "compute_job_ref",
    "load_pipeline",
    "middleware_ref",
    "parse_pipeline",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
