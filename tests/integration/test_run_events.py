"""``arvel-flow run --broker redis`` follows the run live, from the events workers publish."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from arvel_flow.store.run_events import stream_key
from tests.integration.conftest import Cluster, every_broker

pytestmark = [pytest.mark.redis, pytest.mark.slow]

RUN_TIMEOUT = 30


def _pipeline(cluster: Cluster, path: Path, hold: float = 0.0) -> Path:
    """A chain: a quick step, one that holds ``hold`` s, a batch of three, a failing-free end."""
    journal = cluster.journal_key
    items = ", ".join(f'{{journal: "{journal}", tag: m{i}}}' for i in range(3))
    path.write_text(
        f"""
version: 1
name: followed
pipeline:
  chain:
    - id: first
      job: tests.integration.jobs:Record
      with: {{journal: "{journal}", tag: first}}
    - id: second
      job: tests.integration.jobs:Record
      with: {{journal: "{journal}", tag: second, hold: {hold}}}
    - id: fan
      batch:
        - job: tests.integration.jobs:Record
          each: [{items}]
"""
    )
    return path


def _events(log: Path) -> list[dict[str, Any]]:
    """The JSON events in a run's output (other lines, on stderr, are skipped)."""
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def _finish(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return process.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"arvel-flow run did not end:\n{log.read_text()}") from None


@every_broker
async def test_run_shows_the_workers_events_while_the_run_goes_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Given a worker (on Redis, NATS or RabbitMQ; the store is Redis), and a pipeline
    # whose second step holds for 3 s
    await cluster.start_worker()
    pipeline = _pipeline(cluster, tmp_path / "p.yaml", hold=3.0)
    # When `arvel-flow run --output json` follows it
    run, log = cluster.spawn("run", [str(pipeline), "--output", "json"])
    try:
        # Then the first step's success is shown while the second still runs
        def first_done() -> bool:
            return any(
                e["event"] == "job.succeeded" and e.get("step") == "first" for e in _events(log)
            )

        await cluster.wait_for(first_done, 15, "job.succeeded of the first step shown")
        assert run.poll() is None
        assert "second" not in cluster.tags()
        assert _finish(run, log) == 0
    finally:
        if run.poll() is None:
            run.kill()
    # And every worker event is there, the run ending with its run.finished
    events = _events(log)
    assert events[-1]["event"] == "run.finished"
    assert events[-1]["status"] == "succeeded"
    succeeded = [e["step"] for e in events if e["event"] == "job.succeeded"]
    assert sorted(succeeded) == sorted(["first", "second", "fan.0[0]", "fan.0[1]", "fan.0[2]"])
    # And the kinds of event are those of the same pipeline run embedded
    embedded, embedded_log = cluster.spawn(
        "run", [str(pipeline), "--output", "json", "--broker", "memory", "--store", "memory"]
    )
    assert _finish(embedded, embedded_log) == 0
    assert {e["event"] for e in events} == {e["event"] for e in _events(embedded_log)}


@every_broker
async def test_run_says_no_worker_consumes_the_queue_and_goes_on_waiting(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Given no worker at all
    pipeline = _pipeline(cluster, tmp_path / "p.yaml")
    # When `arvel-flow run` starts a run on the broker
    run, log = cluster.spawn("run", [str(pipeline), "--output", "json"])
    try:
        # Then it says that no worker consumes the queue, and how to start one
        notice = "no worker is consuming queue 'default' (last heartbeat: never); waiting"
        await cluster.wait_for(lambda: notice in log.read_text(), 10, "the notice")
        assert "start one with: arvel-flow worker" in log.read_text()
        assert run.poll() is None
        # And once a worker starts, the run goes on to its end
        await cluster.start_worker()
        assert _finish(run, log) == 0
    finally:
        if run.poll() is None:
            run.kill()
    assert _events(log)[-1]["event"] == "run.finished"
    assert log.read_text().count("no worker is consuming") == 1


async def test_the_runs_stream_is_capped_and_expires_once_the_run_finished(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Given a worker, and a run of the pipeline through the command
    await cluster.start_worker()
    run, log = cluster.spawn(
        "run", [str(_pipeline(cluster, tmp_path / "p.yaml")), "--output", "json"]
    )
    assert _finish(run, log) == 0
    # Then the run's event stream is there, capped, and expiring within the hour
    run_id = _events(log)[-1]["run_id"]
    key = stream_key(cluster.prefix, run_id)
    info = cluster.redis.xinfo_stream(key)
    assert 0 < info["length"] <= 10_000
    assert 0 < cluster.redis.ttl(key) <= 3_600
