"""`run_pipeline`: run a whole pipeline in this process, for a test."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from arvel_flow.launch import Run, compile_file
from arvel_flow.pipeline.models import PipelineSpec
from arvel_flow.queue.clock import Clock
from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.queue.envelope import new_id
from arvel_flow.queue.front import Queue
from arvel_flow.queue.result import BatchResult
from arvel_flow.testing.clock import FakeClock
from arvel_flow.testing.faults import FaultsArg, check_faults, parse_faults


async def run_pipeline(
    pipeline: str | os.PathLike[str] | PipelineSpec,
    *,
    queue: Queue | None = None,
    vars: Mapping[str, Any] | None = None,
    fail: FaultsArg | None = None,
    clock: Clock | None = None,
    run_jobs: bool = True,
) -> BatchResult:
    """Run a pipeline file (or a loaded `PipelineSpec`) to its end, here; its result.

    The file is loaded, validated and compiled as ``arvel-flow run`` does it, and the
    run is followed through the same front door (`arvel_flow.launch.Run`), but on
    ``queue`` rather than the file's ``queue:`` section: by default a `SyncQueue` with a
    memory store and a `FakeClock`, so jobs run one at a time, in order, and backoffs
    cost nothing. Pass a `FakeQueue` to record the jobs instead of running them (or to
    run only some), or a queue of your own; a queue you pass is left open, for you to
    inspect its store.

    ``fail`` injects failures as ``arvel-flow run --dry-run --fail`` does (see
    `arvel_flow.testing.faults`): the attempts it names fail (or time out, or are
    released) without their job running, on a `SimulatedQueue`; the other attempts run
    their job, unless ``run_jobs`` is False (then no job code runs at all, as in the
    command's simulation).

    Example::

        result = await run_pipeline("nightly.yaml", fail=["import@1,2", "digests[*]:timeout"])
        assert result.succeeded == ...

    Args:
        pipeline: The pipeline file, or a spec from `arvel_flow.load_pipeline`.
        queue: Where the jobs run.
        vars: Values for the file's ``vars:`` (as ``--set NAME=VALUE``); not used
            with a spec, which has its values already.
        fail: Specs (``"import@1,2"``, ``"digests[*]:timeout"``), or a mapping from a
            step to its failing attempts (``{"import": [1, 2], "report": "all"}``).
        clock: The clock of the run (a `FakeClock` by default); read its time, or
            its ``sleeps``, after the run.
        run_jobs: With ``fail``: run the job of each attempt no fault touches.

    Raises:
        ConfigError: The file is invalid.
        FaultSpecError: A spec in ``fail`` is malformed or names no job step.
        ValueError: Both ``queue`` and ``fail`` (or ``clock``) were given: the queue
            brings its own clock and runner.
    """
    if queue is not None and (fail is not None or clock is not None):
        raise ValueError("give queue= or fail= / clock=, not both: a queue has its own clock")
    if isinstance(pipeline, PipelineSpec):
        from arvel_flow.compiler import compile_plan

        plan = compile_plan(pipeline)
    else:
        plan, _section = compile_file(os.fspath(pipeline), vars or {})
    if fail is not None:
        from arvel_flow.testing.simulation import SimulatedQueue

        faults = parse_faults(fail)
        check_faults(faults, plan)
        queue = SimulatedQueue(faults, run_jobs=run_jobs, clock=clock)
        async with await Run.begin(queue, plan, new_id()[:12]) as handle:
            return await handle.wait()
    if queue is not None:
        handle = await Run.begin(queue, plan, new_id()[:12])
        return await handle.wait()
    clock = clock if clock is not None else FakeClock()
    async with await Run.begin(SyncQueue(clock=clock), plan, new_id()[:12]) as handle:
        return await handle.wait()
