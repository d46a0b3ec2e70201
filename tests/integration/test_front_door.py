"""The front door with a broker: jobs run in worker processes, the handle follows the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import arvel_flow
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


def _chain(cluster: Cluster, path: Path, hold: float) -> Path:
    journal = cluster.journal_key
    record = "tests.integration.jobs:Record"
    path.write_text(
        f"""
version: 1
name: front-door
pipeline:
  chain:
    - {{id: first, job: {record}, with: {{journal: "{journal}", tag: first, hold: {hold}}}}}
    - {{id: last, job: {record}, with: {{journal: "{journal}", tag: last}}}}
""",
        encoding="utf-8",
    )
    return path


async def test_run_waits_for_the_workers_to_finish_the_pipeline(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Given a worker on Redis
    worker = await cluster.start_worker()
    # When a pipeline is run through the front door on the same broker and store
    result = await arvel_flow.run(
        _chain(cluster, tmp_path / "p.yaml", 0.1), settings=cluster.settings
    )
    # Then the worker ran it, in order, and the result comes from the shared store
    assert result.ok, result
    assert result.progress == (2, 2)
    assert cluster.tags() == ["first", "last"]
    assert {entry["pid"] for entry in cluster.journal()} == {worker.pid}


async def test_closing_the_handle_stops_following_and_the_workers_go_on(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    # Given a worker, and a run started through the front door
    await cluster.start_worker()
    pipeline = _chain(cluster, tmp_path / "p.yaml", 0.5)
    run = await arvel_flow.start(pipeline, settings=cluster.settings)
    # When the handle is closed while the first step runs
    await run.close()
    # Then the run goes on in the worker to its end
    async with asyncio.timeout(20):
        result = await dispatcher.wait(run.id)
    assert result.ok, result
    assert cluster.tags() == ["first", "last"]
