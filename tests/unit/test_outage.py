"""`Outage`: retries through a backend that is away, said once, given up past the grace."""

from __future__ import annotations

import asyncio

import pytest

from arvel_flow.errors import BackendError, BackendFullError, OutageError
from arvel_flow.outage import MAX_DELAY, Outage, compute_retry_delay

LOST = BackendError("redis://:***@cache:6379/0", "Connection refused")


class Flaky:
    """An operation that fails ``failures`` times, then answers ``"ok"``."""

    def __init__(self, failures: int, error: BackendError = LOST) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


@pytest.mark.parametrize(
    ("retry", "delay"), [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.6), (6, 2.0), (99, 2.0)]
)
def test_retries_wait_twice_as_long_each_time_up_to_a_cap(retry: int, delay: float) -> None:
    assert compute_retry_delay(retry) == pytest.approx(delay)
    assert compute_retry_delay(10**6) == MAX_DELAY


async def test_an_outage_is_said_once_and_once_when_it_is_over() -> None:
    # Given an outage shared by three operations that each fail twice
    lines: list[str] = []
    outage = Outage(30.0, lines.append)
    # When they all run through it
    results = await asyncio.gather(*(outage.call(Flaky(2)) for _ in range(3)))
    # Then each got its answer, and the outage was said once, and once over
    assert results == ["ok"] * 3
    assert lines == [
        "redis://:***@cache:6379/0 could not be reached: Connection refused; "
        "retrying for up to 30s",
        "redis://:***@cache:6379/0 is back",
    ]
    assert not outage.active


async def test_past_the_grace_the_operation_gives_up_with_the_last_failure() -> None:
    # Given a backend that stays full
    lines: list[str] = []
    now = [0.0]
    outage = Outage(0.3, lines.append, clock=lambda: now[0])

    async def waited(seconds: float) -> bool:
        now[0] += seconds
        return False

    outage._stopped_within = waited  # type: ignore[method-assign]
    full = BackendFullError("redis://cache:6379/0", "used memory is over maxmemory")
    operation = Flaky(10**6, full)
    # When an operation retries through it
    with pytest.raises(OutageError) as raised:
        await outage.call(operation)
    # Then it gives up within the grace, once the next wait would pass it, saying why,
    # the failure as its cause
    assert operation.calls >= 2
    assert now[0] <= 0.3 < now[0] + compute_retry_delay(operation.calls)
    assert str(raised.value) == (
        "redis://cache:6379/0 refused the write: out of memory "
        "(used memory is over maxmemory); gave up after 0.3s"
    )
    assert raised.value.__cause__ is full
    assert isinstance(raised.value, BackendError)  # exit 3, like any backend failure
    assert len(lines) == 1


async def test_an_operation_that_never_failed_does_not_end_the_outage() -> None:
    # Given an outage started by a refused write
    lines: list[str] = []
    outage = Outage(30.0, lines.append)
    outage.failed(LOST)
    # When a read that never failed succeeds
    assert await outage.call(Flaky(0)) == "ok"
    # Then the outage goes on (only a retried operation says it is over)
    assert outage.active
    assert len(lines) == 1


async def test_a_first_failure_made_elsewhere_is_retried_after_a_backoff() -> None:
    lines: list[str] = []
    outage = Outage(30.0, lines.append)
    operation = Flaky(0)
    # When a failure seen elsewhere hands the retry to the outage
    assert await outage.call(operation, after=LOST) == "ok"
    # Then the operation ran once, after saying the outage, and it is over
    assert operation.calls == 1
    assert lines[-1] == "redis://:***@cache:6379/0 is back"


async def test_stopping_ends_retrying_with_the_last_failure() -> None:
    # Given an operation retrying through an outage
    stopping = asyncio.Event()
    outage = Outage(30.0, lambda _: None, until=stopping)
    operation = Flaky(10**6)
    retrying = asyncio.create_task(outage.call(operation))
    await asyncio.sleep(0.05)
    # When the process stops
    stopping.set()
    calls = operation.calls
    # Then the operation ends with the failure itself (not a give-up), trying no more
    # (the timeout only stops a hang: without the stop it would retry for 30 s)
    async with asyncio.timeout(10):
        with pytest.raises(BackendError) as raised:
            await retrying
    assert raised.value is LOST
    assert operation.calls == calls
