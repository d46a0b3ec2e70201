"""A run whose store fails, or whose delivery fails for any reason, stops: it never hangs.

In process (`TaskiqQueue`'s local pool) jobs run in tasks of their own, so
an error after a job (recording its outcome) reaches no caller: the queue must stop
the run (`abandon`) so that whoever waits for it hears of the error, within moments.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from taskiq import InMemoryBroker

from arvel_flow.errors import BackendError, StoreFileError
from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.clock import SystemClock
from arvel_flow.queue.drivers import SyncQueue, TaskiqQueue
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.transports import KickTransport
from arvel_flow.store import MemoryStore, SqliteStore
from tests.fixtures.waiting import until
from tests.unit.queue.flow_jobs import Journal, Sleeper, Step
from tests.unit.store.sqlite_faults import FULL, wrap

pytestmark = pytest.mark.timeout(10)

STOPPED_WITHIN = 2.0
"""Seconds a failing run may take to stop (its jobs here take milliseconds)."""


class FailingFinishes:
    """A store whose ``finish_step`` raises ``error`` from its ``after``-th call on."""

    def __init__(self, store: Any, error: Exception, after: int) -> None:
        self._store = store
        self._error = error
        self._after = after
        self.finishes = 0

    async def finish_step(self, *args: Any, **kwargs: Any) -> Any:
        self.finishes += 1
        if self.finishes >= self._after:
            raise self._error
        return await self._store.finish_step(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class FailingFailures:
    """A store that cannot record a failed job."""

    def __init__(self, store: Any, error: Exception) -> None:
        self._store = store
        self._error = error

    async def add_failed(self, record: Any) -> None:
        raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class FailingSleepClock(SystemClock):
    """The system clock, except that waiting out a delay fails."""

    async def sleep(self, seconds: float) -> None:
        raise BackendError("clock", "cannot wait")


def batch_of(count: int, *, hold: float = 0.01) -> Batch:
    return Batch([Step(name=f"s{i}", hold=hold) for i in range(count)])


async def test_a_store_write_failing_after_a_job_stops_the_run_and_wait_raises(
    journal: Journal, loop_errors: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    # Given an in-process run of 20 jobs, two at a time, whose store fails on the third finish
    error = BackendError("sqlite:state.db", "disk I/O error")
    store = FailingFinishes(MemoryStore(), error, after=3)
    queue = TaskiqQueue(concurrency=2, store=store)  # type: ignore[arg-type]
    # When it runs
    started = asyncio.get_running_loop().time()
    with pytest.raises(BackendError) as raised:
        await batch_of(20).dispatch(queue)
    # Then waiting for it raises the store's error, at once, without a word in the logs
    assert raised.value is error
    assert asyncio.get_running_loop().time() - started < STOPPED_WITHIN
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    # And nothing more was dispatched: only the jobs running when it failed had started
    assert len(journal.entries) <= 4
    await queue.close()
    assert loop_errors == []


async def test_jobs_running_when_the_store_fails_are_cancelled(journal: Journal) -> None:
    # Given a run whose first job's finish cannot be recorded while a long job runs
    error = BackendError("sqlite:state.db", "database is locked")
    store = FailingFinishes(MemoryStore(), error, after=1)
    queue = TaskiqQueue(concurrency=2, store=store)  # type: ignore[arg-type]
    flow = Batch([Step(name="quick", hold=0.1), Sleeper(name="long", seconds=30)])
    # When it runs
    with pytest.raises(BackendError):
        await flow.dispatch(queue)
    await queue.close()
    # Then the long job was cancelled rather than waited for (it runs again on resume)
    assert "long cancelled" in journal.entries


async def test_a_bug_while_recording_a_job_is_logged_once_and_stops_the_run(
    journal: Journal, loop_errors: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a store with a bug: its finish raises something that is no FlowError
    bug = RuntimeError("a bug in the store")
    store = FailingFinishes(MemoryStore(), bug, after=1)
    queue = TaskiqQueue(concurrency=2, store=store)  # type: ignore[arg-type]
    # When a run goes through it
    with pytest.raises(RuntimeError) as raised:
        await batch_of(5).dispatch(queue)
    # Then waiting raises the bug, which was logged once, with its traceback
    assert raised.value is bug
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in logged] == ["arvel-flow could not process a delivery"]
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[1] is bug
    await queue.close()
    assert loop_errors == []


async def test_join_raises_instead_of_waiting_for_jobs_that_will_not_run(
    journal: Journal, loop_errors: list[dict[str, Any]]
) -> None:
    # Given jobs dispatched outside a run, one at a time, to a store that cannot record
    # a failure
    error = BackendError("sqlite:state.db", "disk I/O error")
    queue = TaskiqQueue(concurrency=1, store=FailingFailures(MemoryStore(), error))  # type: ignore[arg-type]
    for name in "abc":
        await queue.dispatch(Step(name=name, fail_times=-1))
    # When the caller waits for them
    with pytest.raises(BackendError) as raised:
        await queue.join()
    # Then it hears why the queue stopped, rather than waiting for ever for b and c
    assert raised.value is error
    assert journal.entries == ["a"]
    await queue.close()
    assert loop_errors == []


async def test_a_delayed_job_whose_timer_fails_stops_the_run(
    journal: Journal, loop_errors: list[dict[str, Any]]
) -> None:
    # Given a chain whose second step fails once and waits out its backoff on a timer,
    # on a clock that cannot wait
    queue = TaskiqQueue(concurrency=2, store=MemoryStore(), clock=FailingSleepClock())
    chain = Chain(Step(name="a"), Step(name="b", fail_times=1, max_retries=1, backoff=5))
    # When it runs
    with pytest.raises(BackendError, match="cannot wait"):
        await chain.dispatch(queue)
    # Then the run stopped instead of waiting for a retry that will never be sent
    assert journal.entries == ["a", "b"]
    await queue.close()
    assert loop_errors == []


async def test_python_api_dispatch_raises_when_the_sqlite_commit_fails(
    tmp_path: Path,
    journal: Journal,
    loop_errors: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given an in-process queue on a sqlite store grouping its writes, whose disk is full
    store = SqliteStore(tmp_path / "state.db", commit_interval=0.05)
    wrap(store).fail_on = "COMMIT"
    queue = TaskiqQueue(concurrency=2, store=store)
    # When a flow is dispatched and waited for, as the Python API does
    with pytest.raises(StoreFileError) as raised:
        await batch_of(50).dispatch(queue)
    # Then it raises the one clear error, and nothing went to the logs or the event
    # loop's handler
    assert str(raised.value) == (
        f"the state store {tmp_path / 'state.db'} could not be written: {FULL}"
    )
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    with pytest.raises(StoreFileError):
        await queue.close()
    assert loop_errors == []


async def test_sync_dispatch_raises_when_the_sqlite_commit_fails(
    tmp_path: Path, journal: Journal
) -> None:
    # Given the sync driver on a sqlite store whose disk is full
    store = SqliteStore(tmp_path / "state.db", commit_interval=0.05)
    wrap(store).fail_on = "COMMIT"
    queue = SyncQueue(store=store)
    # When a chain of slow steps is dispatched (past the first commit)
    chain = Chain(*(Step(name=f"s{i}", hold=0.03) for i in range(10)))
    # Then dispatch raises, and no step ran after the failed commit was found
    with pytest.raises(StoreFileError):
        await chain.dispatch(queue)
    assert len(journal.entries) < 10
    with pytest.raises(StoreFileError):
        await queue.close()


async def test_a_delayed_send_that_fails_is_reported_not_left_in_its_task(
    loop_errors: list[dict[str, Any]],
) -> None:
    # Given a transport to a broker that refuses every message
    class Refusing:
        def kicker(self) -> Refusing:
            return self

        def with_labels(self, **labels: Any) -> Refusing:
            return self

        async def kiq(self, payload: str) -> None:
            raise ConnectionError("broker gone")

    reported: list[BaseException] = []
    transport = KickTransport(InMemoryBroker(), Refusing(), on_error=reported.append)  # type: ignore[arg-type]
    # When a delayed envelope's time comes
    now = SystemClock().now()
    envelope = Envelope(JobRef.of(Step(name="a")), new_id(), available_at=now + 0.01)
    await transport.send([envelope], now)
    await until(lambda: bool(reported), what="the failure to be reported")
    # Then the failure went to the queue, not into an unread task
    assert [str(e) for e in reported] == ["broker gone"]
    await transport.close()
    assert loop_errors == []
