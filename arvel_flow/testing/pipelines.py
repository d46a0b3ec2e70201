"""`run_pipeline`: run a whole pipeline in this process, for a test."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from arvel_flow.launch import Run, compile_file
from arvel_flow.pipeline.models import PipelineSpec
from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.queue.envelope import new_id
from arvel_flow.queue.front import Queue
from arvel_flow.queue.result import BatchResult
from arvel_flow.testing.clock import FakeClock


async def run_pipeline(
    pipeline: str | os.PathLike[str] | PipelineSpec,
    *,
    queue: Queue | None = None,
    vars: Mapping[str, Any] | None = None,
) -> BatchResult:
    """Run a pipeline file (or a loaded `PipelineSpec`) to its end, here; its result.

    The file is loaded, validated and compiled as ``arvel-flow run`` does it, and the
    run is followed through the same front door (`arvel_flow.launch.Run`), but on
    ``queue`` rather than the file's ``queue:`` section: by default a `SyncQueue` with a
    memory store and a `FakeClock`, so jobs run one at a time, in order, and backoffs
    cost nothing. Pass a `FakeQueue` to record the jobs instead of running them (or to
    run only some), or a queue of your own; a queue you pass is left open, for you to
    inspect its store.

    Args:
        pipeline: The pipeline file, or a spec from `arvel_flow.load_pipeline`.
        queue: Where the jobs run.
        vars: Values for the file's ``vars:`` (as ``--set NAME=VALUE``); not used
            with a spec, which has its values already.

    Raises:
        ConfigError: The file is invalid.
    """
    if isinstance(pipeline, PipelineSpec):
        from arvel_flow.compiler import compile_plan

        plan = compile_plan(pipeline)
    else:
        plan, _section = compile_file(os.fspath(pipeline), vars or {})
    if queue is not None:
        handle = await Run.begin(queue, plan, new_id()[:12])
        return await handle.wait()
    async with await Run.begin(SyncQueue(clock=FakeClock()), plan, new_id()[:12]) as handle:
        return await handle.wait()
