"""The compiler layer: validated specs → the `Chain` / `Batch` graph, and strict checks.

It sits above the file format (`arvel_flow.pipeline`, which imports no runtime module)
and the runtime, and is the one place that joins them: ``graph`` compiles a
`PipelineSpec` (`compile_pipeline`); ``strict``, ``params`` and ``signatures`` import
what a file names and check it; ``load`` runs the file format's loader with those
checks as its last pass (`load_pipeline`).
"""

from arvel_flow.compiler.graph import (
    Step,
    class_settings,
    compile_pipeline,
    compute_job_ref,
    middleware_ref,
)
from arvel_flow.compiler.load import load_pipeline, parse_pipeline

__all__ = [
    "Step",
    "class_settings",
    "compile_pipeline",
    "compute_job_ref",
    "load_pipeline",
    "middleware_ref",
    "parse_pipeline",
]
