"""`Deadlines`: attempts' time limits on one shared timer, behaving as ``asyncio.timeout``."""

from __future__ import annotations

import asyncio

import pytest

from arvel_flow.queue.deadlines import Deadlines

FOREVER = 3600.0


async def test_a_limit_reached_cancels_the_body_and_raises_timeout_error() -> None:
    # Given a body that would wait for ever, under a 10 ms limit
    deadlines = Deadlines()
    limit = deadlines.limit(0.01)
    seen: list[str] = []

    async def body() -> None:
        with limit:
            try:
                await asyncio.sleep(FOREVER)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

    # When it runs
    with pytest.raises(TimeoutError):
        await body()
    # Then the body was cancelled, and the limit says it expired
    assert seen == ["cancelled"]
    assert limit.expired()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_body_that_ends_in_time_is_left_alone() -> None:
    # Given a limit far away
    deadlines = Deadlines()
    limit = deadlines.limit(FOREVER)
    # When the body ends at once
    with limit:
        await asyncio.sleep(0)
    # Then nothing expired and nothing is held any more
    assert not limit.expired()
    assert deadlines.tracked == 0


async def test_a_shorter_limit_entered_later_expires_first() -> None:
    # Given a long limit entered, then a short one in another task
    deadlines = Deadlines()
    outcomes: list[str] = []

    async def limited(name: str, seconds: float, release: asyncio.Event) -> None:
        try:
            with deadlines.limit(seconds):
                await release.wait()
            outcomes.append(f"{name} in time")
        except TimeoutError:
            outcomes.append(f"{name} timed out")

    release = asyncio.Event()
    long = asyncio.create_task(limited("long", FOREVER, release))
    await asyncio.sleep(0)
    short = asyncio.create_task(limited("short", 0.01, release))
    # When the short one runs out and the long one is released after
    await short
    release.set()
    await long
    # Then only the short one timed out
    assert outcomes == ["short timed out", "long in time"]


async def test_a_cancellation_from_elsewhere_is_not_turned_into_a_timeout() -> None:
    # Given a task under a long limit
    deadlines = Deadlines()

    async def limited() -> None:
        with deadlines.limit(FOREVER):
            await asyncio.sleep(FOREVER)

    task = asyncio.create_task(limited())
    await asyncio.sleep(0)
    # When someone else cancels it
    task.cancel()
    # Then it ends cancelled, not with TimeoutError
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines.tracked == 0


async def test_a_cancellation_beside_an_expiry_stays_a_cancellation() -> None:
    # Given a task whose limit expires while someone else cancels it too
    deadlines = Deadlines()
    entered = asyncio.Event()

    async def limited() -> None:
        with deadlines.limit(0.01):
            entered.set()
            try:
                await asyncio.sleep(FOREVER)
            except asyncio.CancelledError:
                task.cancel()  # a second request, from outside the limit
                raise

    task = asyncio.create_task(limited())
    await entered.wait()
    # When it ends / Then the outside request wins: CancelledError, not TimeoutError
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_limits_ended_out_of_order_are_not_held_for_ever() -> None:
    # Given one long-running limit, and many short bodies entered after it that end in time
    deadlines = Deadlines()
    release = asyncio.Event()

    async def long() -> None:
        with deadlines.limit(FOREVER):
            await release.wait()

    task = asyncio.create_task(long())
    await asyncio.sleep(0)
    for _ in range(1_000):
        with deadlines.limit(FOREVER):
            await asyncio.sleep(0)
    # Then the ended ones behind the live head were dropped, not kept by the thousand
    assert deadlines.tracked < 200
    release.set()
    await task
    assert deadlines.tracked == 0


def test_the_same_deadlines_serve_one_event_loop_after_another() -> None:
    # Given deadlines used in one event loop, which then closes
    deadlines = Deadlines()

    async def times_out() -> bool:
        try:
            with deadlines.limit(0.01):
                await asyncio.sleep(FOREVER)
        except TimeoutError:
            return True
        return False

    assert asyncio.run(times_out())
    # When they are used again in a new loop / Then limits still expire there
    assert asyncio.run(times_out())


async def test_a_limit_outside_a_task_is_refused() -> None:
    # Given no running task (a plain function called by the loop)
    deadlines = Deadlines()
    errors: list[RuntimeError] = []

    def outside() -> None:
        try:
            with deadlines.limit(1.0):
                pass
        except RuntimeError as error:
            errors.append(error)

    asyncio.get_running_loop().call_soon(outside)
    await asyncio.sleep(0)
    # Then it says where a limit belongs
    assert "inside a task" in str(errors[0])
