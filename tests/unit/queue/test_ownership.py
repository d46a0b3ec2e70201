"""One run, one owner: queues that execute runs in place hold each run's owner lease.

The e2e suite (tests/e2e/test_ownership.py) drives the same through real processes;
here the Python API is exercised, with short leases and stores that fail on purpose.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from arvel_flow.errors import BackendError, RunExistsError, RunOwnedError, RunTakenOverError
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.clock import SystemClock
from arvel_flow.queue.drivers import TaskiqQueue
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.lease import LeaseKeeper
from arvel_flow.queue.ownership import RunLease, process_is_gone
from arvel_flow.store import MemoryStore, RunOwner, SqliteStore, StoreContract
from tests.unit.queue.flow_jobs import Journal, Step

pytestmark = pytest.mark.timeout(20)

LEASE = 0.3
"""Renewed every 0.1 s."""


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    backend = SqliteStore(tmp_path / "state.db")
    yield backend
    await backend.close()


def queue_on(store: StoreContract, **options: Any) -> TaskiqQueue:
    return TaskiqQueue(store=store, owner_lease=LEASE, **options)


def gone_owner(now: float, *, host: str = "elsewhere", seconds: float = 60.0) -> RunOwner:
    return RunOwner("other", host, 7, now, now, now + seconds)


async def test_a_dispatched_flow_is_owned_while_it_runs_and_released_after(
    store: SqliteStore, journal: Journal
) -> None:
    # Given a queue executing in place on a persistent store
    queue = queue_on(store)
    try:
        # When a flow is dispatched without waiting, then waited for
        run_id = await Chain(Step(name="a", hold=0.2), Step(name="b")).dispatch(queue, wait=False)
        assert isinstance(run_id, str)
        during = await store.get_run_owner(run_id, time.time())
        result = await queue.wait(run_id)
        after = await store.get_run_owner(run_id, time.time())
    finally:
        await queue.close()
    # Then this process owned the run while it ran, and let it go once finished
    assert during is not None
    assert (during.host, during.pid) == (socket.gethostname(), os.getpid())
    assert result.status == "succeeded"
    assert after is None


async def test_a_second_queue_cannot_resume_a_run_the_first_executes(
    store: SqliteStore, journal: Journal
) -> None:
    # Given a run in progress in one queue
    first, second = queue_on(store), queue_on(store)
    try:
        run_id = await first.start(Chain(Step(name="a", hold=0.5)).to_plan())
        # When another queue (as another process would) resumes it, even with force
        with pytest.raises(RunOwnedError) as plain:
            await second.resume(run_id)
        with pytest.raises(RunOwnedError) as forced:
            await second.resume(run_id, force=True)
        result = await first.wait(run_id)
    finally:
        await first.close()
        await second.close()
    # Then both are refused, naming the owner, and the job ran once
    assert isinstance(plain.value.owner, RunOwner)
    assert plain.value.owner.pid == os.getpid()
    assert "still running on this host" in str(plain.value)
    assert "--force never takes over a live process" in str(forced.value)
    assert result.status == "succeeded"
    assert journal.runs_of("a") == 1


async def test_an_expired_lease_is_taken_over_and_its_owner_noted(store: SqliteStore) -> None:
    # Given a run whose owner's lease expired
    lease = RunLease(store, "r", clock=SystemClock(), seconds=LEASE)
    await store.take_run_owner("r", gone_owner(time.time() - 120, seconds=1))
    # When the run is taken
    await lease.take()
    await lease.release()
    # Then it was taken, and the lease knows from whom
    assert lease.previous is not None
    assert lease.previous.owner_id == "other"


async def test_force_takes_over_another_host_s_owner_after_one_renewal_interval(
    store: SqliteStore,
) -> None:
    # Given a run owned by a process on another host, its lease live
    await store.take_run_owner("r", gone_owner(time.time()))
    lease = RunLease(store, "r", clock=SystemClock(), seconds=LEASE)
    # When it is taken without, then with force
    with pytest.raises(RunOwnedError) as refused:
        await lease.take()
    began = time.monotonic()
    await lease.take(force=True)
    waited = time.monotonic() - began
    owner = await store.get_run_owner("r", time.time())
    await lease.release()
    # Then only force took it, after giving the old owner a renewal to notice
    assert "If that process is gone, take the run over with --force" in str(refused.value)
    assert owner is not None
    assert owner.owner_id == lease.owner.owner_id
    assert waited >= LEASE / 3 + 1.0


async def test_a_queue_whose_run_is_taken_over_stops_its_jobs_and_says_so(
    store: SqliteStore, journal: Journal
) -> None:
    # Given a run in progress, its job holding for 5 s
    queue = queue_on(store)
    try:
        run_id = await queue.start(Chain(Step(name="a", hold=5), Step(name="b")).to_plan())
        await asyncio.sleep(0.05)
        current = await store.get_run_owner(run_id, time.time())
        assert current is not None
        # When another process takes it over
        await store.take_run_owner(run_id, gone_owner(time.time()), replacing=current.owner_id)
        # Then waiting for it raises within a renewal, naming the new owner
        with pytest.raises(RunTakenOverError) as lost:
            await asyncio.wait_for(queue.wait(run_id), LEASE * 3)
    finally:
        await queue.close()
    assert "taken over by pid 7 on elsewhere" in str(lost.value)
    # And the running job was cut short, nothing else started, and the new owner keeps it
    assert journal.entries == ["a"]
    reopened = SqliteStore(store.path)
    try:
        steps = await reopened.get_steps(run_id)
        kept = await reopened.get_run_owner(run_id, time.time())
    finally:
        await reopened.close()
    assert not steps["root.0"].final
    assert kept is not None
    assert kept.owner_id == "other"


class _FailingRenewals(MemoryStore):
    """A store whose owner lease can be taken once; renewing it fails."""

    def __init__(self) -> None:
        super().__init__()
        self.takes = 0

    async def take_run_owner(
        self, run_id: str, owner: RunOwner, *, replacing: str | None = None
    ) -> RunOwner:
        self.takes += 1
        if self.takes > 1:
            raise BackendError("sqlite:/full/disk", "database or disk is full")
        return await super().take_run_owner(run_id, owner, replacing=replacing)


async def test_a_store_failure_while_renewing_is_raised_into_the_run(journal: Journal) -> None:
    # Given a run in progress on a store that fails at the first renewal
    queue = queue_on(_FailingRenewals())
    try:
        run_id = await queue.start(Chain(Step(name="a", hold=5)).to_plan())
        # When it is waited for / Then the store's error comes out, not a hang
        with pytest.raises(BackendError, match="database or disk is full"):
            await asyncio.wait_for(queue.wait(run_id), LEASE * 3)
    finally:
        await queue.close()


class _Transport:
    """Sends nowhere: stands for a broker whose workers run the jobs."""

    remote = True

    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        self.sent.extend(envelopes)

    async def size(self, queue: str) -> int:
        return len(self.sent)

    async def close(self) -> None:
        pass


async def test_runs_sent_to_workers_are_owned_by_no_process(store: SqliteStore) -> None:
    # Given a queue that sends jobs to workers
    transport = _Transport()
    queue = TaskiqQueue(store=store, transport=transport, owner_lease=LEASE)
    try:
        # When it starts a run and resumes it
        run_id = await queue.start(Chain(Step(name="a")).to_plan())
        await queue.resume(run_id)
        owner = await store.get_run_owner(run_id, time.time())
    finally:
        await queue.close()
    # Then no lease was taken: the workers advance the run
    assert transport.sent
    assert owner is None


async def test_a_lease_keeper_raises_the_first_failed_renewal_in_the_guarded_work() -> None:
    # Given a keeper whose second renewal fails
    renewals = 0
    lost: list[BaseException] = []

    async def renew() -> bool:
        nonlocal renewals
        renewals += 1
        if renewals == 2:
            raise BackendError("redis://h", "gone")
        return True

    keeper = LeaseKeeper(renew, 0.05, on_lost=lost.append)
    keeper.start()
    # When it guards work that would take a long time
    with pytest.raises(BackendError):
        await keeper.guard(asyncio.sleep(10))
    await keeper.stop()
    # Then the error came out once, and renewals stopped
    assert renewals == 2
    assert len(lost) == 1


async def test_a_lease_keeper_lets_finished_work_end_as_it_did() -> None:
    # Given a keeper that never fails / When it guards quick work / Then its value
    async def renew() -> bool:
        return True

    keeper = LeaseKeeper(renew, 0.05)
    keeper.start()
    assert await keeper.guard(asyncio.sleep(0.12, result="done")) == "done"
    await keeper.stop()
    assert keeper.error is None


def test_a_process_is_gone_only_when_its_pid_is_free_on_this_host() -> None:
    # Given owners here (alive: this process; gone: a pid no process has) and elsewhere
    here = socket.gethostname()
    alive = RunOwner("a", here, os.getpid(), 0, 0, 1)
    dead = RunOwner("b", here, 2**22 + 12345, 0, 0, 1)
    remote = RunOwner("c", "elsewhere", 1, 0, 0, 1)
    # Then only the free pid here is known gone; elsewhere is unknowable
    assert (process_is_gone(alive), process_is_gone(dead), process_is_gone(remote)) == (
        False,
        True,
        None,
    )


async def test_starting_a_run_whose_id_is_taken_runs_nothing_and_keeps_no_lease(
    store: SqliteStore, journal: Journal
) -> None:
    # Given a run started and finished under a given id (a tick's run)
    queue = queue_on(store)
    try:
        plan = Chain(Step(name="a")).to_plan("tick")
        await queue.wait(await queue.start(plan, run_id="tick-run"))
        # When another start of the same id comes (a second scheduler's)
        with pytest.raises(RunExistsError) as caught:
            await queue.start(Chain(Step(name="b")).to_plan("tick"), run_id="tick-run")
        # Then it is refused: no job ran, no lease is held, the first run stands
        assert caught.value.run_id == "tick-run"
        assert (journal.runs_of("a"), journal.runs_of("b")) == (1, 0)
        assert await store.get_run_owner("tick-run", time.time()) is None
        run = await store.get_run("tick-run")
        assert run is not None
        assert run.status == "succeeded"
    finally:
        await queue.close()
