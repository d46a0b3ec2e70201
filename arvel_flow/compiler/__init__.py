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

from typing import TYPE_CHECKING

from arvel_flow.lazy import lazy_exports

if TYPE_CHECKING:
    # ``X as X`` marks a re-export for type checkers; at run time `__getattr__` imports.
    from arvel_flow.compiler.graph import Step as Step
    from arvel_flow.compiler.graph import class_settings as class_settings
    from arvel_flow.compiler.graph import compile_pipeline as compile_pipeline
    from arvel_flow.compiler.graph import compile_plan as compile_plan
    from arvel_flow.compiler.graph import compute_job_ref as compute_job_ref
    from arvel_flow.compiler.graph import middleware_ref as middleware_ref
    from arvel_flow.compiler.load import load_pipeline as load_pipeline
    from arvel_flow.compiler.load import parse_pipeline as parse_pipeline

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

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
