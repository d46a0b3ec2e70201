"""Run event streams: written batched, capped, expiring; failures dropped and counted."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import redis

from arvel_flow.secrets import register_secret
from arvel_flow.store.redis import RedisStore
from arvel_flow.store.run_events import RunEventPublisher, stream_key


def _event(name: str, n: int = 0) -> dict[str, Any]:
    return {"event": name, "time": float(n), "run_id": "r1", "step": f"s{n}"}


@pytest.fixture
def client(redis_url: str) -> Any:
    made = redis.Redis.from_url(redis_url, decode_responses=True)
    yield made
    made.close()


async def test_events_published_together_are_one_entry(
    redis_url: str, redis_prefix: str, client: Any
) -> None:
    # Given a publisher
    publisher = RunEventPublisher.from_url(redis_url, redis_prefix)
    try:
        # When 250 events of one run and 1 of another are published before a write
        for n in range(250):
            publisher.publish("r1", _event("job.started", n))
        publisher.publish("r2", _event("job.started"))
        await publisher.flush()
    finally:
        await publisher.close()
    # Then each run's stream has its events in entries of at most 100
    assert client.xlen(stream_key(redis_prefix, "r1")) == 3
    assert client.xlen(stream_key(redis_prefix, "r2")) == 1


async def test_events_are_read_back_in_order_after_a_given_entry(
    redis_url: str, redis_prefix: str
) -> None:
    # Given a publisher and the store's reader
    publisher = RunEventPublisher.from_url(redis_url, redis_prefix)
    store = RedisStore(redis_url, prefix=redis_prefix)
    reader = store.run_events()
    try:
        assert await reader.last_id("r1") == "0-0"
        publisher.publish("r1", _event("job.started", 1))
        await publisher.flush()
        mark = await reader.last_id("r1")
        # When more events are published after the mark
        publisher.publish("r1", _event("job.succeeded", 2))
        publisher.publish("r1", _event("run.finished", 3))
        await publisher.flush()
        # Then reading after it gives just those, in order, with their fields
        read = await reader.read("r1", mark, block=1.0)
        assert [data for _, data in read] == [_event("job.succeeded", 2), _event("run.finished", 3)]
        # And nothing more comes after the last one (the read blocks, then gives up)
        assert await reader.read("r1", read[-1][0], block=0.01) == []
    finally:
        await publisher.close()
        await store.close()


async def test_the_stream_is_capped_and_expires_sooner_once_the_run_finished(
    redis_url: str, redis_prefix: str, client: Any
) -> None:
    # Given a publisher keeping about 10 entries per run, for an hour, 60 s once finished
    publisher = RunEventPublisher.from_url(
        redis_url, redis_prefix, maxlen=10, ttl=3600, finished_ttl=60
    )
    key = stream_key(redis_prefix, "r1")
    try:
        # When a run publishes 400 events, each written on its own (an entry each)
        for n in range(400):
            publisher.publish("r1", _event("job.succeeded", n))
            await publisher.flush()
        # Then the stream holds about the cap (MAXLEN ~ trims whole nodes), not 400
        assert 10 <= client.xlen(key) < 250
        assert 3500 < client.ttl(key) <= 3600
        # And once the run finished it expires within the shorter time
        publisher.publish("r1", _event("run.finished", 2000))
        await publisher.flush()
        assert 0 < client.ttl(key) <= 60
    finally:
        await publisher.close()


async def test_a_secret_value_is_not_written_to_the_stream(
    redis_url: str, redis_prefix: str, client: Any
) -> None:
    # Given a value registered as secret in the worker's process
    register_secret("hunter2-run-events-test")
    publisher = RunEventPublisher.from_url(redis_url, redis_prefix)
    try:
        # When an event's error message holds it
        event = {**_event("job.failed"), "error": "login hunter2-run-events-test refused"}
        publisher.publish("r1", event)
        await publisher.flush()
    finally:
        await publisher.close()
    # Then the stream has the message, scrubbed
    (_, fields), *_ = client.xrange(stream_key(redis_prefix, "r1"))
    assert "hunter2-run-events-test" not in fields["events"]
    assert "login" in fields["events"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_events_redis_refuses_are_dropped_counted_and_said_once(
    caplog: pytest.LogCaptureFixture, loop_errors: list[dict[str, Any]]
) -> None:
    # Given a publisher whose Redis is not there
    publisher = RunEventPublisher.from_url(f"redis://127.0.0.1:{_closed_port()}/0", "p:")
    # When events are published in two batches
    with caplog.at_level(logging.WARNING, logger="arvel_flow.store.run_events"):
        for n in range(3):
            publisher.publish("r1", _event("job.started", n))
        await publisher.flush()
        publisher.publish("r1", _event("job.succeeded"))
        await publisher.close()
    # Then nothing was raised, every event is counted as dropped, and it was said once
    assert publisher.dropped == 4
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1
    assert said[0].startswith("run events: 4 dropped (Redis failed or fell behind)")
    assert loop_errors == []


async def test_a_full_buffer_drops_the_newest_events(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a publisher that buffers at most 5 events
    publisher = RunEventPublisher.from_url(redis_url, redis_prefix, buffer=5)
    try:
        # When 8 are published before it could write any
        for n in range(8):
            publisher.publish("r1", _event("job.started", n))
        # Then 3 are dropped and 5 written, and the loss is said once written
        assert publisher.dropped == 3
        with caplog.at_level(logging.WARNING, logger="arvel_flow.store.run_events"):
            await publisher.flush()
        assert [r.getMessage()[:23] for r in caplog.records] == ["run events: 3 dropped ("]
        reader = RedisStore(redis_url, prefix=redis_prefix)
        assert len(await reader.run_events().read("r1", "0-0", block=0.01)) == 5
        await reader.close()
    finally:
        await publisher.close()
