"""``arvel-flow top --once --format json`` on a live deployment: real workers, a real run."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.integration.conftest import ROOT, Cluster, every_broker
from tests.integration.jobs import Gated, Record

pytestmark = [pytest.mark.redis, pytest.mark.brokers, pytest.mark.slow]


def top(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "arvel-flow"), "top", *args],
        env=cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@every_broker
async def test_top_reports_two_live_workers_and_the_one_run_in_progress(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given two workers, and a run whose first job waits on a marker
    workers = [await cluster.start_worker("--concurrency", "4") for _ in range(2)]
    gate = Gated(journal=cluster.journal_key, tag="gate")
    run_id = await Batch([gate, Record(journal=cluster.journal_key, tag="after")]).dispatch(
        dispatcher, wait=False
    )
    assert isinstance(run_id, str)
    started = f"{cluster.journal_key}:started:gate"
    await cluster.wait_for(lambda: bool(cluster.redis.exists(started)), 15, "the gate job ran")
    loads = [f"{cluster.prefix}worker:{worker.name}" for worker in workers]
    await cluster.wait_for(
        lambda: sum(int(cluster.redis.hget(key, "running") or 0) for key in loads) == 1,
        15,
        "a beat said the gate job runs",
    )
    try:
        # When top prints one snapshot as JSON
        result = top(cluster, "--once", "--format", "json")
    finally:
        cluster.redis.set(f"{cluster.journal_key}:release:gate", 1)
    # Then it names both workers alive, with their host and pid, and the run in progress
    assert result.returncode == 0, result.stderr
    snapshot = json.loads(result.stdout)
    alive = [worker for worker in snapshot["workers"] if worker["alive"]]
    assert sorted(worker["name"] for worker in alive) == sorted(w.name for w in workers)
    assert {worker["pid"] for worker in alive} == {w.pid for w in workers}
    assert {worker["host"] for worker in alive} == {socket.gethostname()}
    assert all(worker["queues"] == ["default"] for worker in alive)
    assert {worker["concurrency"] for worker in alive} == {4}
    assert sorted(worker["running"] for worker in alive) == [0, 1]
    [run] = snapshot["runs"]
    assert run["run_id"] == run_id
    assert run["total"] == 2
    assert run["finished"] < 2
    assert [queue["name"] for queue in snapshot["queues"]] == ["default"]
    async with asyncio.timeout(30):
        assert (await dispatcher.wait(run_id)).status == "succeeded"
