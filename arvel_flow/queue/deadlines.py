"""`Deadlines`: the time limits of every running attempt, on one timer of the event loop.

`asyncio.timeout` arms a timer of its own per scope (a handle made, pushed on the
loop's heap, cancelled on exit): on the hot path of every job that was a seventh of a
no-op job's time. Attempts share one timer here instead. Each `TimeLimit` is an entry
in a heap ordered by deadline, and a single ``loop.call_at`` handle is armed for the
earliest; leaving a limit only marks its entry. Marked entries are dropped once they
reach the head of the heap (jobs with the same limit end about in the order they
began, so the heap stays about as big as the number of attempts running), or all at
once when they outnumber the live ones. The timer is not disarmed when the heap
empties: it wakes at most once per limit's length, finds nothing due and stops.

A limit expires as an ``asyncio.timeout`` scope does: its task is cancelled, and on
leaving the scope the `CancelledError` becomes `TimeoutError`, unless the task was
also cancelled by someone else, whose cancellation then goes on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from types import TracebackType

_LIVE, _EXPIRED, _LEFT = 0, 1, 2

_COMPACT_AT = 64
"""Left entries kept in the heap, at least, before it is rebuilt without them."""


class TimeLimit:
    """One attempt's time limit: a context manager entered once, in the task it limits.

    Use `Deadlines.limit` to make one.
    """

    __slots__ = ("_cancelling", "_deadlines", "_seconds", "_state", "_task")

    def __init__(self, deadlines: Deadlines, seconds: float) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self._state = _LIVE
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0

    def __enter__(self) -> TimeLimit:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a time limit must be entered inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._deadlines._add(self, task.get_loop())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state == _LIVE:
            self._state = _LEFT
            self._deadlines._left(self)
            return
        task = self._task
        assert task is not None
        if task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
            # No one else asked for the cancellation: it is ours, and it means time is up.
            raise TimeoutError from error

    def expired(self) -> bool:
        """Whether the limit was reached while the scope ran."""
        return self._state == _EXPIRED

    def _expire(self) -> None:
        assert self._task is not None
        self._state = _EXPIRED
        self._task.cancel()


class Deadlines:
    """The time limits of the attempts running on one event loop, sharing one timer.

    Bound to the loop of the first limit entered; a limit entered on another loop
    (a new ``asyncio.run``) starts afresh there, forgetting the old loop's limits.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimeLimit]] = []
        self._order = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._left_count = 0

    def limit(self, seconds: float) -> TimeLimit:
        """A limit of ``seconds`` (> 0) from when it is entered, to use as ``with limit:``."""
        return TimeLimit(self, seconds)

    @property
    def tracked(self) -> int:
        """Entries held: the live limits, and ended ones not yet dropped."""
        return len(self._heap)

    def _add(self, limit: TimeLimit, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            self._rebind(loop)
        at = loop.time() + limit._seconds
        heapq.heappush(self._heap, (at, next(self._order), limit))
        if at < self._timer_at:
            self._arm(loop, at)

    def _left(self, limit: TimeLimit) -> None:
        """``limit``'s scope ended in time: drop what has ended from the heap's head."""
        heap = self._heap
        self._left_count += 1
        while heap and heap[0][2]._state == _LEFT:
            heapq.heappop(heap)
            self._left_count -= 1
        if self._left_count > _COMPACT_AT and self._left_count * 2 > len(heap):
            self._heap = [entry for entry in heap if entry[2]._state != _LEFT]
            heapq.heapify(self._heap)
            self._left_count = 0

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(at, self._fire)
        self._timer_at = at

    def _fire(self) -> None:
        """The timer: expire every limit that is due, then arm for the next one."""
        loop = self._loop
        assert loop is not None
        due = max(self._timer_at, loop.time())  # the loop may fire a little early
        self._timer = None
        self._timer_at = math.inf
        heap = self._heap
        while heap and (heap[0][0] <= due or heap[0][2]._state == _LEFT):
            _, _, limit = heapq.heappop(heap)
            if limit._state == _LEFT:
                self._left_count -= 1
            else:
                limit._expire()
        if heap:
            self._arm(loop, heap[0][0])

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = math.inf
        self._heap = []
        self._left_count = 0
        self._loop = loop
