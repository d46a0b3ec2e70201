"""The threads that prove a worker alive: outages are said once, a dead thread is noticed.

No server is needed: the beats are replaced, and nothing connects before a beat.
"""

from __future__ import annotations

import logging
import time

import pytest
import redis

from arvel_flow.brokers.redis.heartbeat import Heartbeat, HeartbeatError
from arvel_flow.outage import Outage


def heartbeat(outage: Outage | None = None) -> Heartbeat:
    return Heartbeat("redis://:pw@127.0.0.1:1/0", ["consumers:default"], "w1", 0.01, outage)


def wait_until(condition: object, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.01)
    raise AssertionError("not within the time")


def test_a_heartbeat_thread_that_dies_is_noticed_by_the_worker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a heartbeat whose beat hits a bug
    beats = heartbeat()

    def broken(score: str = "") -> None:
        raise KeyError("a bug")

    beats.beat = broken  # type: ignore[method-assign]
    # When its thread beats
    beats._thread.start()
    wait_until(lambda: not beats._thread.is_alive())
    # Then the worker's check raises (the worker stops rather than run unseen)
    with pytest.raises(HeartbeatError, match="the heartbeat of worker w1 stopped") as raised:
        beats.check()
    assert isinstance(raised.value.__cause__, KeyError)
    assert "the heartbeat thread of w1 died" in caplog.text
    beats.close()


def test_failing_beats_are_one_outage_said_once_and_once_when_they_resume() -> None:
    # Given a heartbeat on the worker's outage, whose beats fail 20 times, then succeed
    lines: list[str] = []
    outage = Outage(30.0, lines.append)
    beats = heartbeat(outage)
    calls = 0

    def flaky(score: str = "") -> None:
        nonlocal calls
        calls += 1
        if calls <= 20:
            raise redis.ConnectionError("Connection refused")

    beats.beat = flaky  # type: ignore[method-assign]
    # When it beats through that
    beats._thread.start()
    wait_until(lambda: calls > 25)
    beats.stop()
    # Then the outage was said once, and once over; the thread lives on
    assert lines == [
        "redis://:***@127.0.0.1:1/0 could not be reached: Connection refused; "
        "retrying for up to 30s",
        "redis://:***@127.0.0.1:1/0 is back",
    ]
    beats.check()
    beats.close()


def test_a_heartbeat_of_its_own_logs_its_outage_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    beats = heartbeat()
    calls = 0

    def failing(score: str = "") -> None:
        nonlocal calls
        calls += 1
        raise redis.ConnectionError("Connection refused")

    beats.beat = failing  # type: ignore[method-assign]
    beats._thread.start()
    wait_until(lambda: calls > 10)
    beats.stop()
    assert caplog.text.count("could not be reached") == 1
    beats.close()


def test_nats_in_progress_beats_that_cannot_start_are_noticed_by_the_worker() -> None:
    from arvel_flow.brokers.nats.consumer import ProgressBeats
    from arvel_flow.errors import BackendError

    # Given in-progress beats towards a NATS server that is not there
    beats = ProgressBeats("nats://127.0.0.1:1", "w1", 0.01, Outage(30.0, lambda _: None))
    # When their thread starts
    beats.start()
    wait_until(lambda: not beats._thread.is_alive(), within=10)
    # Then the worker's check raises why (exit 3: NATS could not be reached)
    with pytest.raises(BackendError, match="could not be reached"):
        beats.check()
