"""`TurnBatcher`: what tasks submit in one loop turn is handled as one batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arvel_flow.batching import TurnBatcher


class Recorder:
    """A handler that answers each item doubled, a negative one with its own error."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()
        self.arrived = asyncio.Event()
        """Set when a batch arrives."""

    async def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        self.arrived.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [ValueError(f"negative {i}") if i < 0 else 2 * i for i in items]


async def test_what_is_submitted_in_one_turn_is_handled_as_one_batch() -> None:
    # Given a batcher
    handler = Recorder()
    batcher: TurnBatcher[int, int] = TurnBatcher(handler)
    # When three tasks submit in the same turn of the loop
    answers = await asyncio.gather(*(batcher.submit(i) for i in (1, 2, 3)))
    # Then the handler is called once, with all three, and each gets its own answer
    assert handler.batches == [[1, 2, 3]]
    assert answers == [2, 4, 6]


async def test_a_lone_submission_is_handled_alone() -> None:
    handler = Recorder()
    batcher: TurnBatcher[int, int] = TurnBatcher(handler)
    assert await batcher.submit(5) == 10
    assert await batcher.submit(6) == 12
    assert handler.batches == [[5], [6]]


async def test_an_item_that_failed_raises_to_its_caller_only() -> None:
    # Given a batch of which one item fails
    batcher: TurnBatcher[int, int] = TurnBatcher(Recorder())
    answers = await asyncio.gather(
        batcher.submit(1), batcher.submit(-1), batcher.submit(3), return_exceptions=True
    )
    # Then that item's caller gets its error; the others their answers
    assert answers[0] == 2
    assert answers[2] == 6
    assert isinstance(answers[1], ValueError)
    assert str(answers[1]) == "negative -1"


async def test_a_handler_that_fails_raises_to_every_caller(loop_errors: list[Any]) -> None:
    # Given a handler that fails as a whole (a connection lost)
    batcher: TurnBatcher[int, int] = TurnBatcher(Recorder(fail=ConnectionError("gone")))
    answers = await asyncio.gather(*(batcher.submit(i) for i in (1, 2)), return_exceptions=True)
    # Then every caller raises it, and nothing is left unseen on the loop
    assert all(isinstance(a, ConnectionError) for a in answers)
    assert loop_errors == []


async def test_a_cancelled_caller_leaves_the_others_their_answers(loop_errors: list[Any]) -> None:
    # Given a batch being handled
    handler = Recorder()
    handler.release.clear()
    batcher: TurnBatcher[int, int] = TurnBatcher(handler)
    first = asyncio.create_task(batcher.submit(1))
    second = asyncio.create_task(batcher.submit(2))
    await handler.arrived.wait()
    # When one caller is cancelled meanwhile
    first.cancel()
    handler.release.set()
    # Then the other still gets its answer
    assert await second == 4
    with pytest.raises(asyncio.CancelledError):
        await first
    assert loop_errors == []


async def test_batches_are_handled_while_an_earlier_one_is_still_going() -> None:
    # Given a batch whose handling is slow
    handler = Recorder()
    handler.release.clear()
    batcher: TurnBatcher[int, int] = TurnBatcher(handler)
    first = asyncio.create_task(batcher.submit(1))
    await handler.arrived.wait()
    # When another item is submitted meanwhile
    handler.arrived.clear()
    second = asyncio.create_task(batcher.submit(2))
    await handler.arrived.wait()
    handler.release.set()
    # Then it went in a batch of its own, without waiting for the first
    assert handler.batches == [[1], [2]]
    assert (await first, await second) == (2, 4)
