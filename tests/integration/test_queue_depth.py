"""Queue depth and lag read from each real broker: the metrics' and ``top``'s reading."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from arvel_flow.brokers import BROKERS
from arvel_flow.brokers.depth import QueueDepth
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.e2e.harness import free_port, scrape
from tests.integration.conftest import ROOT, Cluster, every_broker
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.brokers, pytest.mark.slow]


async def read(cluster: Cluster, *only: str) -> dict[str, QueueDepth]:
    sides = BROKERS[cluster.broker].sides()
    depths = await sides.read_depths(cluster.settings, cluster.broker_url, only, 5.0)
    return {depth.name: depth for depth in depths}


@every_broker
async def test_ready_messages_are_counted_until_a_worker_took_and_acknowledged_them(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given three jobs sent to a queue no worker reads yet
    for n in range(3):
        await dispatcher.dispatch(Record(journal=cluster.journal_key, tag=f"j{n}"))
    # When the broker is asked
    waiting = (await read(cluster, "default"))["default"]
    # Then all three wait; the lag is the age of the oldest where the broker can tell
    assert waiting.depth == 3
    if cluster.broker == "rabbitmq":
        assert waiting.lag is None  # only a consumer sees a message's time over AMQP
        assert waiting.consumers == 0
    else:
        assert waiting.lag is not None
        assert 0 <= waiting.lag < 30
        assert waiting.taken == 0
    # And once a worker ran them, none waits
    worker = await cluster.start_worker()
    await cluster.wait_for(lambda: len(cluster.tags()) == 3, 30, "all ran")
    done = await wait_for_depth(cluster, 0)
    assert done.lag in (0.0, None)
    if cluster.broker == "rabbitmq":
        assert done.consumers == 1  # the worker's connection
    # And top sees the worker, which says in its beats that it settled the three, and
    # measures the queue's rate (what was settled between its two readings: a number)
    settled = "settled:default"
    await cluster.wait_for(
        lambda: cluster.redis.hget(f"{cluster.prefix}worker:{worker.name}", settled) == b"3",
        10,
        "a beat after the last settle",
    )
    result = top_json(cluster)
    assert result.returncode == 0, result.stderr
    snapshot = json.loads(result.stdout)
    [seen] = snapshot["workers"]
    assert (seen["name"], seen["alive"], seen["settled"]) == (worker.name, True, {"default": 3})
    [queue] = snapshot["queues"]
    assert queue["rate"] == 0.0


def top_json(cluster: Cluster, **env: str) -> subprocess.CompletedProcess[str]:
    """``arvel-flow top --once --format json`` on the cluster (its rate over 0.2 s)."""
    command = [str(Path(sys.executable).parent / "arvel-flow"), "top", "--once"]
    return subprocess.run(
        [*command, "--format", "json", "--interval", "0.2"],
        env={**cluster.env, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


async def wait_for_depth(cluster: Cluster, depth: int) -> QueueDepth:
    """The reading of ``default`` once its depth is ``depth`` (acknowledgements take a moment)."""
    readings: list[QueueDepth] = []

    async def settled() -> bool:
        readings.append((await read(cluster, "default"))["default"])
        return readings[-1].depth == depth and readings[-1].taken in (0, None)

    for _ in range(100):
        if await settled():
            return readings[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"depth never settled at {depth}: {readings[-3:]}")


@every_broker
async def test_a_worker_serves_the_depth_of_its_broker_s_queues_and_top_shows_them(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    pytest.importorskip("prometheus_client")
    # Given a worker serving metrics that reads another queue, and two jobs for "default"
    port = free_port()
    await cluster.start_worker("--queues", "other", "--metrics-port", str(port))
    for n in range(2):
        await dispatcher.dispatch(Record(journal=cluster.journal_key, tag=f"j{n}"))
    # When Prometheus scrapes it, and top reads the broker
    text = scrape(port)
    result = top_json(cluster, ARVEL_FLOW_QUEUES="default,other")
    # Then both say the two jobs wait in "default" (the worker on RabbitMQ, which cannot
    # list queues, reports only the queue it reads)
    lag = 'arvel_flow_queue_oldest_seconds{queue="default"}'
    if cluster.broker == "rabbitmq":
        assert 'arvel_flow_queue_depth{queue="other"} 0.0' in text
        assert 'queue="default"' not in text
    else:
        assert 'arvel_flow_queue_depth{queue="default"} 2.0' in text
        assert lag in text
    assert result.returncode == 0, result.stderr
    queues = {queue["name"]: queue for queue in json.loads(result.stdout)["queues"]}
    assert queues["default"]["depth"] == 2
