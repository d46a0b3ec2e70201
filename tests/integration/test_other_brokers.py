"""NATS JetStream and RabbitMQ: what the Redis-only tests check through Redis internals.

The promises every broker keeps (shared batches, ``kill -9``, long and blocking jobs,
delays, the delivery cap) are tested on all three where the Redis tests are, marked
`every_broker`. These cover the rest: messages from strangers, stopping, and a
broker that cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.flow import FanOut
from arvel_flow.wiring import make_queue
from tests.conftest import CI
from tests.integration.conftest import (
    HEARTBEAT_TIMEOUT,
    STOP_TIMEOUT,
    Cluster,
    other_brokers,
    publish_raw,
)
from tests.integration.jobs import Gated, Record

pytestmark = [pytest.mark.redis, pytest.mark.brokers, pytest.mark.slow]


def record(cluster: Cluster, tag: str, hold: float = 0.0, **settings: object) -> Record:
    return Record(journal=cluster.journal_key, tag=tag, hold=hold, **settings)


@other_brokers
async def test_poisoned_messages_are_recorded_as_failed_and_the_worker_goes_on(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker
    worker = await cluster.start_worker()
    # When a message that is not JSON and one naming another task arrive, then a good job
    await publish_raw(cluster, b"{not json")
    await publish_raw(cluster, b'{"task_id": "1", "task_name": "x", "args": [], "kwargs": {}}')
    await dispatcher.dispatch(record(cluster, "good"))
    # Then the good job runs in the same worker, and both are recorded as failed
    await cluster.wait_for(lambda: cluster.tags() == ["good"], 10, "the good job ran")
    assert worker.process.poll() is None
    failed_key = f"{cluster.prefix}failed"
    await cluster.wait_for(lambda: cluster.redis.hlen(failed_key) == 2, 5, "recorded")
    failures = await dispatcher.store.list_failed()
    assert [f.job for f in failures] == ["<unreadable message>"] * 2


@other_brokers
async def test_an_idle_worker_exits_0_on_sigterm(cluster: Cluster) -> None:
    # Given an idle worker
    worker = await cluster.start_worker()
    await asyncio.sleep(0.5)
    # When it gets SIGTERM
    worker.terminate()
    # Then it says it stops, then that it stopped, and exits 0 (a NATS fetch returns
    # within a second by itself; a RabbitMQ read is woken, see test_rabbitmq_broker)
    assert worker.wait(STOP_TIMEOUT) == 0, worker.output()
    assert worker.said()[-2:] == [
        "stopping: finishing running jobs (again to cancel them)",
        f"worker {worker.name} stopped",
    ]


@other_brokers
async def test_a_busy_worker_finishes_its_job_on_sigterm_and_exits_0(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given a worker running a job that ends when the test says so
    worker = await cluster.start_worker()
    await dispatcher.dispatch(Gated(journal=cluster.journal_key, tag="long"))
    started = f"{cluster.journal_key}:started:long"
    await cluster.wait_for(lambda: bool(cluster.redis.exists(started)), 10, "the job started")
    # When it gets SIGTERM, and another job arrives after that
    worker.terminate()
    await cluster.wait_for(lambda: "stopping:" in worker.output(), 10, "stopping")
    await dispatcher.dispatch(record(cluster, "after"))
    # Then it goes on running the job, however long that takes
    await asyncio.sleep(0.5)
    assert worker.process.poll() is None, worker.output()
    # And once the job ends, it exits 0, having finished it
    cluster.redis.set(f"{cluster.journal_key}:release:long", 1)
    assert worker.wait(STOP_TIMEOUT) == 0, worker.output()
    assert cluster.tags()[:1] == ["long"]
    # And a new worker runs what is left once: the long job was acknowledged
    await cluster.start_worker()
    await cluster.wait_for(lambda: len(cluster.tags()) == 2, 10, "the other job ran")
    await asyncio.sleep(HEARTBEAT_TIMEOUT + 0.5)
    assert cluster.tags() == ["long", "after"]


@other_brokers
async def test_an_unreachable_broker_exits_3_and_never_shows_the_password(
    cluster: Cluster,
) -> None:
    # Given a broker URL with a password, where nothing listens
    scheme = {"nats": "nats", "rabbitmq": "amqp"}[cluster.broker]
    url = f"{scheme}://worker:s3cret-pw@127.0.0.1:1/"
    # When a worker starts on it
    worker = await cluster.start_worker(wait=False, ARVEL_FLOW_URL=url)
    # Then it exits 3 (not retrying forever), naming the server with the password masked
    assert worker.wait(15) == 3, worker.output()
    output = worker.output()
    assert "s3cret-pw" not in output
    assert f"{scheme}://worker:***@127.0.0.1:1/ could not be reached" in output
    assert "Traceback" not in output


class PrivateNats:
    """A NATS server with JetStream of the test's own, which it can stop and start again."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.address = ("127.0.0.1", self.port)
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server, and wait until it accepts connections."""
        command = [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js"]
        command += ["-sd", str(self.store_dir)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.05)
        raise AssertionError("the private nats-server did not start")

    def kill(self) -> None:
        """``kill -9`` the server (JetStream keeps what it stored on disk)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
HAVE_NATS_SERVER = Path(NATS_SERVER).exists()


async def test_a_nats_outage_mid_batch_loses_nothing_and_fires_callbacks_once(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    if not HAVE_NATS_SERVER:
        if CI:
            pytest.fail(f"{NATS_SERVER} is missing under CI=true")
        pytest.skip(f"no nats-server at {NATS_SERVER} to run a private one")
    # Given a NATS server of this test's own, two workers on it, and a batch of 60
    # jobs of 0.1 s with a callback
    nats = PrivateNats(tmp_path / "jetstream")
    nats.start()
    cluster = Cluster(redis_url, redis_prefix, tmp_path, broker="nats", broker_url=nats.url)
    dispatcher = make_queue(cluster.settings)
    try:
        for _ in range(2):
            await cluster.start_worker("--concurrency", "4")
        items = [{"tag": f"m{i}"} for i in range(60)]
        job = Record(journal=cluster.journal_key, tag="", hold=0.1)
        batch = Batch([FanOut(job, items)]).then(record(cluster, "then"))
        run_id = await batch.dispatch(dispatcher, wait=False)
        assert isinstance(run_id, str)
        # When the server is killed in the middle of the batch, and back 2 s later
        await cluster.wait_for(lambda: len(cluster.journal()) >= 10, 20, "a sixth ran")
        nats.kill()
        await asyncio.sleep(2)
        nats.start()
        restarted = time.monotonic()
        # Then the run succeeds: every job ran, the callback once
        async with asyncio.timeout(40):
            result = await dispatcher.wait(run_id)
        took = time.monotonic() - restarted
        print(f"MEASURED NATS outage of 2s mid-batch: run finished {took:.2f}s after it came back")
        assert (result.status, result.progress) == ("succeeded", (60, 60))
        tags = Counter(cluster.tags())
        assert set(tags) == {f"m{i}" for i in range(60)} | {"then"}
        assert tags["then"] == 1
    finally:
        await dispatcher.close()
        problems = cluster.close()
        nats.kill()
    # And the workers lived through it, saying so in warnings, not tracebacks
    assert not [p for p in problems if "Traceback" in p], problems
