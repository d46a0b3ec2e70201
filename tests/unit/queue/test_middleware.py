"""Middleware: the stack's order, skipping, RateLimited, WithoutOverlapping, UniqueJobGuard."""

from __future__ import annotations

import asyncio

import pytest

from arvel_flow.lock.memory import MemoryLock
from arvel_flow.queue.batch import Batch
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.job import Job, MiddlewareRef
from arvel_flow.queue.result import BatchResult
from arvel_flow.queue.runner import JobRunner
from arvel_flow.queue.targets import JobRef
from arvel_flow.store import MemoryStore
from tests.unit.queue.flow_harness import T0, Events, Executor, FakeClock, Harness
from tests.unit.queue.flow_jobs import (
    JOBS,
    AsyncOwnMiddleware,
    Journal,
    LockProbe,
    OwnMiddleware,
    Sleeper,
    Step,
    UniquePerUser,
    UserJob,
)


def recording(label: str) -> MiddlewareRef:
    return MiddlewareRef(f"{JOBS}:Recording", {"label": label})


def rate_limited(key: str, max_attempts: int, decay_seconds: float) -> MiddlewareRef:
    return MiddlewareRef(
        "rate_limited", {"key": key, "max_attempts": max_attempts, "decay_seconds": decay_seconds}
    )


def without_overlapping(key: str, **options: float) -> MiddlewareRef:
    return MiddlewareRef("without_overlapping", {"key": key, **options})


# The stack --------------------------------------------------------------------------------


async def test_configured_middleware_wraps_the_classs_own_in_order(
    executor: Executor, journal: Journal
) -> None:
    # Given a job whose class adds middleware, run with defaults, template and step middleware
    stack = (recording("defaults"), recording("template"), recording("step"))
    job = JobRef.of(OwnMiddleware(), middleware=stack)
    # When it runs
    await executor.run(job)
    # Then the configured ones are outermost, in their order, and the class's own innermost
    assert journal.entries == [
        "defaults>",
        "template>",
        "step>",
        "own>",
        "handle",
        "<own",
        "<step",
        "<template",
        "<defaults",
    ]


async def test_a_jobs_middleware_method_may_be_async(executor: Executor, journal: Journal) -> None:
    # Given a job whose middleware() is a coroutine
    # When it runs with one configured middleware
    await executor.run(JobRef.of(AsyncOwnMiddleware(), middleware=(recording("step"),)))
    # Then its own middleware ran, innermost
    assert journal.entries == ["step>", "own-async>", "handle", "<own-async", "<step"]


async def test_middleware_that_does_not_call_next_skips_the_run(
    executor: Executor, journal: Journal, events: Events
) -> None:
    # Given a job behind a middleware that never calls next
    job = JobRef.of(
        Step(name="never", fail_times=-1),
        middleware=(MiddlewareRef(f"{JOBS}:Skip"),),
    )
    # When it is run
    await executor.run(job)
    # Then handle() did not run; the job is done, not failed and not retried
    assert journal.entries == ["skipped by middleware"]
    assert journal.runs_of("never") == 0
    assert len(events.named("job.succeeded")) == 1
    assert events.named("job.retrying") == events.named("job.failed") == []


# RateLimited ------------------------------------------------------------------------------


async def test_rate_limited_releases_jobs_over_the_limit_until_the_window_allows(
    harness: Harness, events: Events, journal: Journal
) -> None:
    # Given three jobs limited to two runs per 60 s, none allowed a retry
    limit = (rate_limited("import", 2, 60),)
    jobs = [JobRef.of(UserJob(user_id=n), middleware=limit) for n in (1, 2, 3)]
    queue = harness.queue()
    # When they are dispatched together
    await harness.run(*jobs, queue=queue)
    # Then two ran at once, the third was released and ran when the window allowed
    starts = sorted(
        t for label in ("user-1", "user-2", "user-3") for t in journal.started_at[label]
    )
    assert starts == [T0, T0, T0 + 60]
    [released] = events.named("job.released")
    assert released.data["delay"] == 60
    # And the release was neither a failure nor a spent attempt
    assert await queue.store.list_failed() == []
    assert [e.attempt for e in events.named("job.succeeded")] == [1, 1, 1]


async def test_rate_limit_window_is_shared_by_queues_on_one_store(
    harness: Harness, journal: Journal
) -> None:
    # Given two queues (two processes) on one store, and a limit of 2 per 60 s
    limit = (rate_limited("import", 2, 60),)
    first, second = harness.queue(), harness.queue()
    # When the first runs two jobs, then the second runs one
    await harness.run(
        *(JobRef.of(UserJob(user_id=n), middleware=limit) for n in (1, 2)), queue=first
    )
    await harness.run(JobRef.of(UserJob(user_id=3), middleware=limit), queue=second)
    # Then the second queue's job waited for the window the first one filled
    assert journal.started_at["user-3"] == [T0 + 60]


async def test_rate_limit_keys_may_name_job_fields(
    memory_harness: Harness, journal: Journal
) -> None:
    # Given a limit of one run per 60 s per user
    limit = (rate_limited("import-{user_id}", 1, 60),)
    jobs = [
        JobRef.of(UserJob(user_id=n, name=f"job{i}"), middleware=limit)
        for i, n in enumerate((1, 1, 2))
    ]
    # When two jobs of user 1 and one of user 2 are dispatched
    await memory_harness.run(*jobs)
    # Then only user 1's second job waited
    assert journal.started_at == {"job0-1": [T0], "job1-1": [T0 + 60], "job2-2": [T0]}


# WithoutOverlapping -------------------------------------------------------------------------


async def test_without_overlapping_releases_a_copy_while_the_lock_is_held(
    harness: Harness, events: Events, journal: Journal
) -> None:
    # Given another worker holds the overlap lock of user 1, and gives it up on the 3rd delivery
    other = harness.make_store()
    assert await other.lock().acquire("overlap:import-1", "other-worker", 3600)
    stack = (
        MiddlewareRef(
            f"{JOBS}:FreeLockOnDelivery",
            {"key": "overlap:import-1", "owner": "other-worker", "n": 3},
        ),
        without_overlapping("import-{user_id}", release_after=5),
    )
    queue = harness.queue()
    # When a job of user 1 is dispatched
    await harness.run(JobRef.of(UserJob(user_id=1), middleware=stack), queue=queue)
    # Then it was released for 5 s twice (not dropped), then ran once, on its first attempt
    assert [e.data["delay"] for e in events.named("job.released")] == [5, 5]
    assert journal.started_at["user-1"] == [T0 + 10]
    assert [e.attempt for e in events.named("job.succeeded")] == [1]
    assert await queue.store.list_failed() == []


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(Step(name="once"), id="succeeds"),
        pytest.param(Step(name="once", fail_times=-1), id="fails"),
        pytest.param(Sleeper(name="once", seconds=10, timeout_seconds=0.02), id="times-out"),
    ],
)
async def test_without_overlapping_frees_the_lock_when_the_run_ends(
    harness: Harness, job: Job
) -> None:
    # Given a job behind an overlap lock, which succeeds, fails or times out
    queue = harness.queue()
    # When it has run
    await harness.run(JobRef.of(job, middleware=(without_overlapping("k"),)), queue=queue)
    # Then nobody holds the lock any more
    assert await queue.store.lock().owner("overlap:k") is None


class LockWithSlowReplies(MemoryLock):
    """Takes a lock as soon as asked, but answers only once ``reply`` is set.

    Like a Redis lock whose ``SET NX`` has reached the server while its reply is on the way.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent = asyncio.Event()
        self.reply = asyncio.Event()

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        taken = await super().acquire(key, owner, ttl)
        self.sent.set()
        await self.reply.wait()
        return taken


async def test_a_job_cancelled_while_taking_its_overlap_lock_does_not_leave_it_held() -> None:
    # Given an attempt behind an overlap lock whose SET has reached the server, reply pending
    lock = LockWithSlowReplies()
    runner = JobRunner(lock=lock)
    job = JobRef.of(Step(name="once"), middleware=(without_overlapping("k"),))
    attempt = asyncio.create_task(runner.attempt(Envelope(job, "e1")))
    await asyncio.wait_for(lock.sent.wait(), timeout=10)
    # When it is cancelled then (as its time limit does), and the reply comes afterwards
    attempt.cancel()
    lock.reply.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(attempt, timeout=10)
    # Then the lock was given back
    assert await lock.owner("overlap:k") is None


async def test_without_overlapping_lets_only_one_copy_run_at_a_time(
    clock: FakeClock, events: Events, journal: Journal
) -> None:
    # Given two copies of a job that runs 20 ms, behind one overlap lock, on a concurrent driver
    # (the lock must outlast the fake time that passes while the copy keeps being released)
    store = MemoryStore(clock=clock.now)
    harness = Harness("taskiq", clock, events, lambda: store)
    overlap = without_overlapping("copy", release_after=5, expire_after=10**9)
    job = JobRef.of(Step(name="copy", hold=0.02), middleware=(overlap,))
    try:
        # When both are dispatched together
        await harness.run(job, job)
    finally:
        await harness.close()
    # Then both ran, never at the same time, the second after being released
    assert journal.runs_of("copy") == 2
    assert journal.max_running == 1
    assert {e.data["delay"] for e in events.named("job.released")} == {5}


async def test_the_overlap_lock_expires_after_expire_after_if_its_holder_hangs(
    memory_harness: Harness, journal: Journal
) -> None:
    # Given a job holding its overlap lock (expire_after=30) that looks at it as time passes
    probe = LockProbe(key="overlap:probe", sleeps=[29, 2])
    # When it runs, hanging for 29 s, then 2 s more
    await memory_harness.run(
        JobRef.of(probe, middleware=(without_overlapping("probe", expire_after=30),))
    )
    # Then the lock was held at 0 and 29 s, and gone at 31 s
    first, at_29, at_31 = journal.seen["owners-1"]
    assert first is not None
    assert at_29 == first
    assert at_31 is None


async def test_the_overlap_lock_outlives_the_timeout_by_default(
    memory_harness: Harness, journal: Journal
) -> None:
    # Given a job with a 100 s timeout behind an overlap lock without expire_after
    probe = LockProbe(key="overlap:probe", sleeps=[159, 2], timeout_seconds=100)
    # When it runs and looks at its lock as time passes
    await memory_harness.run(JobRef.of(probe, middleware=(without_overlapping("probe"),)))
    # Then the lock lasted the timeout plus a minute
    first, at_159, at_161 = journal.seen["owners-1"]
    assert first is not None
    assert at_159 == first
    assert at_161 is None


# UniqueJobGuard ---------------------------------------------------------------------------


def unique(user_id: int, **settings: object) -> UserJob:
    return UserJob(user_id=user_id, unique_for=60, unique_id="import-{user_id}", **settings)


async def test_a_duplicate_dispatch_is_refused_and_reported(
    harness: Harness, events: Events, journal: Journal
) -> None:
    # Given unique jobs keyed by user
    # When user 1's job is dispatched twice and user 2's once, together
    ids = await harness.run(unique(1), unique(1), unique(2))
    # Then the second dispatch of user 1 was refused and reported as a duplicate
    assert ids[0] is not None
    assert ids[1] is None
    assert ids[2] is not None
    assert journal.entries.count("user-1") == 1
    assert journal.entries.count("user-2") == 1
    [duplicate] = events.named("job.duplicate")
    assert duplicate.job == f"{JOBS}:UserJob"


@pytest.mark.parametrize("fails", [False, True])
async def test_the_unique_lock_is_released_when_the_job_finishes(
    harness: Harness, journal: Journal, fails: bool
) -> None:
    # Given a unique job that has run to its end, successfully or not
    job = Step(name="u", unique_for=60, unique_id="u", fail_times=-1 if fails else 0)
    queue = harness.queue()
    await harness.run(job, queue=queue)
    # When the same job is dispatched again
    [again] = await harness.run(job, queue=queue)
    # Then it is accepted and runs
    assert again is not None
    assert journal.runs_of("u") == 2


@pytest.mark.parametrize(("until_processing", "held"), [(False, True), (True, False)])
async def test_unique_until_processing_releases_the_lock_when_the_job_starts(
    harness: Harness, journal: Journal, until_processing: bool, held: bool
) -> None:
    # Given a unique job that looks at its own unique lock while it runs
    probe = LockProbe(
        key="unique:probe-1",
        unique_for=60,
        unique_id="probe-{user_id}",
        unique_until_processing=until_processing,
    )
    # When it runs
    await harness.run(probe)
    # Then the lock is held while it runs, unless unique_until_processing gave it up at the start
    [owner] = journal.seen["owners-1"]
    assert (owner is not None) is held


async def test_the_unique_id_may_come_from_get_unique_id(
    memory_harness: Harness, journal: Journal
) -> None:
    # Given a job class whose get_unique_id() keys it by user
    # When two jobs of user 1 and one of user 2 are dispatched together
    ids = await memory_harness.run(
        UniquePerUser(user_id=1), UniquePerUser(user_id=1), UniquePerUser(user_id=2)
    )
    # Then the second of user 1 was a duplicate
    assert [i is not None for i in ids] == [True, False, True]
    assert journal.entries == ["user-1", "user-2"]


async def test_a_duplicate_member_of_a_batch_is_reported_and_does_not_fail_it(
    harness: Harness, journal: Journal
) -> None:
    # Given a batch holding the same unique job twice
    # When it runs
    result = await Batch([unique(1), unique(1)]).dispatch(harness.queue())
    # Then one ran, the other is a duplicate, and the batch succeeded
    assert isinstance(result, BatchResult)
    assert result.duplicates == ("root.1",)
    assert result.succeeded == ("root.0",)
    assert result.status == "succeeded"
    assert journal.runs_of("user-1") == 1
