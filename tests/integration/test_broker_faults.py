"""Ordinary broker faults: a Redis restarted empty, out of memory, or paused; a NATS
stream or RabbitMQ queue deleted under a worker.

The Redis faults happen to a private ``redis-server`` (with a password, to check it is
never shown) that this module starts once, on a port of its own, and breaks on purpose;
the shared Redis only keeps the jobs' journal. The NATS and RabbitMQ faults delete only
the test's own stream or queue on the shared servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from tests.conftest import CI
from tests.integration.conftest import Cluster, other_brokers
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PASSWORD = "s3cret-fault-pw"
NEVER = ("Traceback", "never retrieved", PASSWORD)
"""What no output may ever show, whatever the fault."""


class PrivateRedis:
    """A ``redis-server`` of this module's own (no persistence), to kill, pause or fill."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server, empty, and wait until it answers."""
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--requirepass", PASSWORD]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError), self.client() as client:
                client.ping()
                return
            time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def client(self) -> redis.Redis:
        """A client (close it)."""
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def kill(self) -> None:
        """``kill -9``: everything it held is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def signal(self, signum: signal.Signals) -> None:
        """SIGSTOP to pause it (connections stay open, nothing answers), SIGCONT to resume."""
        assert self.process is not None
        self.process.send_signal(signum)

    def set_maxmemory(self, value: str) -> None:
        """``CONFIG SET maxmemory`` ("1": every write is refused; "0": no limit)."""
        with self.client() as client:
            client.config_set("maxmemory", value)


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    """The module's private Redis (started once; tests that kill it start it again)."""
    if not Path(REDIS_SERVER).exists():
        if CI:
            pytest.fail(f"{REDIS_SERVER} is missing under CI=true")
        pytest.skip(f"no redis-server at {REDIS_SERVER} to run a private one")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.signal(signal.SIGCONT)
        server.kill()


@pytest.fixture
async def faulty(
    private_redis: PrivateRedis, redis_url: str, redis_prefix: str, tmp_path: Path
) -> AsyncIterator[Cluster]:
    """Workers and ``run`` on the private Redis (broker, store); the journal on the shared one."""
    made = Cluster(redis_url, redis_prefix, tmp_path, broker="redis", broker_url=private_redis.url)
    made.env.update(ARVEL_FLOW_STORE=private_redis.url, ARVEL_FLOW_TEST_JOURNAL=redis_url)
    try:
        yield made
    finally:
        private_redis.set_maxmemory("0")
        problems = made.close()
    assert not problems, "\n".join(problems)


def write_chain(cluster: Cluster, path: Path, holds: tuple[float, ...]) -> Path:
    """A pipeline file: a chain of `Record` jobs s0, s1... holding ``holds`` seconds."""
    steps = "".join(
        f"""
    - id: s{i}
      job: tests.integration.jobs:Record
      with: {{journal: "{cluster.journal_key}", tag: s{i}, hold: {hold}}}"""
        for i, hold in enumerate(holds)
    )
    path.write_text(f"version: 1\nname: faults\npipeline:\n  chain:{steps}\n")
    return path


def write_batch(cluster: Cluster, path: Path, members: int, hold: float) -> Path:
    """A pipeline file: a batch of ``members`` jobs m0, m1... then a callback."""
    journal = cluster.journal_key
    each = ", ".join(f"{{tag: m{i}}}" for i in range(members))
    path.write_text(
        f"""version: 1
name: faults
pipeline:
  batch:
    - job: tests.integration.jobs:Record
      with: {{journal: "{journal}", hold: {hold}}}
      each: [{each}]
  then: {{job: tests.integration.jobs:Record, with: {{journal: "{journal}", tag: then}}}}
"""
    )
    return path


class Run:
    """An ``arvel-flow run`` subprocess and its output."""

    def __init__(self, cluster: Cluster, pipeline: Path, **env: str) -> None:
        self.process, self.log = cluster.spawn("run", [str(pipeline), "--output", "plain"], env)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def exit_code(self, within: float) -> int:
        """Wait for the exit code (a failure after ``within`` seconds)."""
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"run did not end within {within}s:\n{self.output()}")
            await asyncio.sleep(0.05)
        return self.process.returncode


def assert_clean(*outputs: str) -> None:
    """No traceback, no lost task exception, no password in any output."""
    for output in outputs:
        for never in NEVER:
            assert never not in output, output


async def test_a_worker_takes_new_work_within_seconds_after_redis_restarted_empty(
    faulty: Cluster, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    # Given an idle worker
    worker = await faulty.start_worker()
    # When its Redis is restarted with none of its data (no persistence)
    private_redis.kill()
    private_redis.start()
    restarted = time.monotonic()
    # Then a new run on it is taken and finishes within seconds
    run = Run(faulty, write_chain(faulty, tmp_path / "chain.yaml", (0.0, 0.0)))
    assert await run.exit_code(within=20) == 0, run.output()
    took = time.monotonic() - restarted
    print(f"MEASURED redis restarted empty: a new run finished {took:.2f}s after")
    assert faulty.tags() == ["s0", "s1"]
    # And the worker said once what it recreated
    said = "redis lost its data: recreated consumer group arvel-flow"
    assert worker.output().count(said) == 1, worker.output()
    assert_clean(worker.output(), run.output())


async def test_redis_out_of_memory_fails_run_with_one_message_and_workers_recover(
    faulty: Cluster, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    # Given a worker, and a Redis that refuses every write (maxmemory, noeviction)
    worker = await faulty.start_worker()
    private_redis.set_maxmemory("1")
    # When a run starts on it (grace 1 s)
    refused = Run(faulty, write_chain(faulty, tmp_path / "chain.yaml", (0.0,)), **_grace(1))
    # Then it exits 3 with one message naming the server (password masked), no traceback
    assert await refused.exit_code(within=15) == 3, refused.output()
    message = (
        f"redis://:***@127.0.0.1:{private_redis.port}/0 refused the write: out of memory "
        "(used memory is over maxmemory); gave up after 1s"
    )
    assert refused.output().strip().splitlines()[-1] == f"error: {message}", refused.output()
    # And once memory is freed, a batch runs; when Redis is full again while its jobs
    # finish, the worker says so once (not once per job) and goes on once it is freed
    private_redis.set_maxmemory("0")
    await asyncio.sleep(0.5)
    before = len(worker.output())
    run = Run(faulty, write_batch(faulty, tmp_path / "batch.yaml", members=6, hold=1.5))
    await _wait_until_taken(faulty, private_redis, 6)
    await asyncio.sleep(0.5)  # running their handle(), their start recorded
    private_redis.set_maxmemory("1")
    await faulty.wait_for(lambda: len(faulty.tags()) == 6, 10, "the jobs finished")
    await asyncio.sleep(1.0)
    private_redis.set_maxmemory("0")
    freed = time.monotonic()
    assert await run.exit_code(within=30) == 0, run.output()
    print(f"MEASURED redis out of memory: run finished {time.monotonic() - freed:.2f}s after")
    said = worker.output()[before:]
    assert said.count("refused the write: out of memory") == 1, said
    assert said.count("is back") == 1, said
    assert sorted(set(faulty.tags())) == sorted({f"m{i}" for i in range(6)} | {"then"})
    assert_clean(worker.output(), refused.output(), run.output())


async def test_run_and_worker_ride_through_a_6s_redis_pause(
    faulty: Cluster, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    # Given a worker, and `run` following a chain on it
    worker = await faulty.start_worker()
    run = Run(faulty, write_chain(faulty, tmp_path / "chain.yaml", (0.5, 0.5, 0.0)))
    await faulty.wait_for(lambda: "s0" in faulty.tags(), 15, "the first step ran")
    # When Redis stops answering for 6 s (SIGSTOP, then SIGCONT)
    private_redis.signal(signal.SIGSTOP)
    await asyncio.sleep(6)
    private_redis.signal(signal.SIGCONT)
    resumed = time.monotonic()
    # Then the run finishes, and `run` exits 0, having said so once and once back
    assert await run.exit_code(within=30) == 0, run.output()
    print(f"MEASURED 6s redis pause: run finished {time.monotonic() - resumed:.2f}s after")
    assert set(faulty.tags()) == {"s0", "s1", "s2"}
    output = run.output()
    assert output.count("; retrying for up to 30s") == 1, output
    assert output.count("is back") == 1, output
    assert worker.process.poll() is None
    assert_clean(worker.output(), output)


async def test_run_gives_up_with_exit_3_when_redis_is_away_longer_than_the_grace(
    faulty: Cluster, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    # Given two workers, one of them with a grace of 1 s, and `run` (grace 1 s)
    # following a chain on them
    worker = await faulty.start_worker()
    quitter = await faulty.start_worker(**_grace(1))
    pipeline = write_chain(faulty, tmp_path / "chain.yaml", (0.5, 0.5))
    run = Run(faulty, pipeline, **_grace(1))
    await faulty.wait_for(lambda: "s0" in faulty.tags(), 15, "the first step ran")
    # When Redis stops answering for longer than that
    private_redis.signal(signal.SIGSTOP)
    try:
        # Then `run` exits 3 with one message, naming the server, password masked
        code = await run.exit_code(within=20)
    finally:
        private_redis.signal(signal.SIGCONT)
    assert code == 3, run.output()
    last = run.output().strip().splitlines()[-1]
    assert last.startswith(f"error: redis://:***@127.0.0.1:{private_redis.port}/0 could not be"), (
        last
    )
    assert last.endswith("; gave up after 1s"), last
    # And the worker of grace 1 s gave up too (exit 3, one message)
    assert await asyncio.to_thread(quitter.wait, 20) == 3, quitter.output()
    last = quitter.output().strip().splitlines()[-1]
    assert last.endswith("; gave up after 1s"), quitter.output()
    # And the other (grace 30 s) rode through it: the run finishes there
    await faulty.wait_for(lambda: "s1" in faulty.tags(), 20, "the run finished in the worker")
    assert worker.process.poll() is None
    assert_clean(worker.output(), quitter.output(), run.output())


def _grace(seconds: float) -> dict[str, str]:
    return {"ARVEL_FLOW_OUTAGE_GRACE": str(seconds)}


async def _wait_until_taken(cluster: Cluster, server: PrivateRedis, count: int) -> None:
    stream = f"{cluster.prefix}queue:default"

    def taken() -> bool:
        with server.client() as client:
            try:
                pending = client.xpending(stream, "arvel-flow")["pending"]
            except redis.ResponseError:
                return False
        return int(pending) >= count

    await cluster.wait_for(taken, 15, f"the worker took {count} jobs")


# NATS and RabbitMQ: a stream or queue deleted under an idle worker --------------------


@pytest.mark.brokers
@other_brokers
async def test_a_stream_or_queue_deleted_under_an_idle_worker_is_recreated(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    # Given an idle worker
    worker = await cluster.start_worker()
    # When its NATS stream, or its RabbitMQ queue, is deleted (by an operator)
    await _delete_own_stream_or_queue(cluster)
    deleted = time.monotonic()
    said = {"nats": "NATS lost stream", "rabbitmq": "RabbitMQ lost queue"}[cluster.broker]
    await cluster.wait_for(lambda: said in worker.output(), 10, "the worker noticed")
    # Then a new run is taken and finishes within seconds
    steps = [Record(journal=cluster.journal_key, tag=f"s{i}") for i in range(2)]
    run_id = await Chain(*steps).dispatch(dispatcher, wait=False)
    assert isinstance(run_id, str)
    async with asyncio.timeout(15):
        result = await dispatcher.wait(run_id)
    took = time.monotonic() - deleted
    print(f"MEASURED {cluster.broker} stream/queue deleted: new run finished {took:.2f}s after")
    assert result.status == "succeeded"
    assert cluster.tags() == ["s0", "s1"]
    assert worker.output().count(said) == 1, worker.output()
    assert_clean(worker.output())


RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
HAVE_RABBITMQCTL = Path(RABBITMQCTL).exists()


@pytest.mark.brokers
@pytest.mark.parametrize("cluster", ["rabbitmq"], indirect=True)
async def test_a_job_whose_rabbitmq_connection_dropped_is_not_run_twice_nor_stuck(
    cluster: Cluster, dispatcher: TaskiqQueue
) -> None:
    if not HAVE_RABBITMQCTL:
        pytest.skip(f"no {RABBITMQCTL} to close a connection with")
    # Given a worker running the first step of a chain
    worker = await cluster.start_worker()
    # (long enough for rabbitmqctl, an Erlang VM, to start and close the connection)
    steps = [Record(journal=cluster.journal_key, tag=f"s{i}", hold=5.0 * (1 - i)) for i in range(2)]
    run_id = await Chain(*steps).dispatch(dispatcher, wait=False)
    assert isinstance(run_id, str)
    await asyncio.sleep(0.5)
    # When its connection to RabbitMQ is closed under it (aio-pika reconnects), so that
    # the message it holds can no longer be acknowledged (RabbitMQ requeued it)
    await _close_rabbitmq_connection(f"arvel-flow worker {worker.name}")
    # Then the run finishes soon, the step not run again, the worker still serving
    async with asyncio.timeout(20):
        result = await dispatcher.wait(run_id)
    assert result.status == "succeeded"
    assert cluster.tags() == ["s0", "s1"]
    # And no message is left retrying an acknowledgement that cannot succeed
    await asyncio.sleep(1.0)
    assert "could not be reached" not in worker.output()
    assert worker.process.poll() is None
    assert_clean(worker.output())


async def _close_rabbitmq_connection(name: str) -> None:
    """Close the (test's own) RabbitMQ connection named ``name``, as a network drop would."""

    def rabbitmqctl(*args: str) -> str:
        done = subprocess.run(
            [RABBITMQCTL, "-q", *args], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    listed = await asyncio.to_thread(rabbitmqctl, "list_connections", "pid", "client_properties")
    pids = [line.split("\t")[0] for line in listed.splitlines() if name in line]
    assert len(pids) == 1, listed
    await asyncio.to_thread(rabbitmqctl, "close_connection", pids[0], "test: a network drop")


async def _delete_own_stream_or_queue(cluster: Cluster) -> None:
    """Delete this test's NATS stream or RabbitMQ queue (its own prefix: nothing else)."""
    assert cluster.prefix.startswith("arvel-flow-test:")
    if cluster.broker == "nats":
        from arvel_flow.brokers.nats.transport import JetStreamNames, connect

        client = await connect(cluster.broker_url, name="test: delete the stream")
        try:
            assert await client.jetstream().delete_stream(JetStreamNames(cluster.prefix).stream)
        finally:
            await client.close()
        return
    import aio_pika

    from arvel_flow.brokers.rabbitmq.transport import RabbitMQTransport

    name = RabbitMQTransport(cluster.broker_url, prefix=cluster.prefix).queue_name("default")
    connection = await aio_pika.connect(cluster.broker_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)
