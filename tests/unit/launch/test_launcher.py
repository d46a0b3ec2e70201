"""Following a run whose store fails: the follower stops the run's jobs and reports."""

from __future__ import annotations

from typing import Any

import pytest

from arvel_flow.errors import BackendError
from arvel_flow.launch import Launcher
from arvel_flow.queue.batch import Batch
from arvel_flow.queue.drivers import TaskiqQueue
from arvel_flow.store import MemoryStore
from tests.unit.queue.flow_jobs import JOURNAL, Sleeper

pytestmark = pytest.mark.timeout(10)


class FailingReads:
    """A store whose ``get_run`` fails from its ``after``-th call on (a store read failing)."""

    def __init__(self, store: Any, error: Exception, after: int) -> None:
        self._store = store
        self._error = error
        self._after = after
        self.reads = 0

    async def get_run(self, run_id: str) -> Any:
        self.reads += 1
        if self.reads >= self._after:
            raise self._error
        return await self._store.get_run(run_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_store_failing_while_a_run_is_followed_cancels_its_jobs() -> None:
    # Given an in-process run of a 30 s job whose store fails when the follower reads it
    JOURNAL.reset()
    error = BackendError("sqlite:state.db", "disk I/O error")
    queue = TaskiqQueue(store=FailingReads(MemoryStore(), error, after=1))  # type: ignore[arg-type]
    plan = Batch([Sleeper(name="long", seconds=30)]).to_plan()
    # When it is followed
    with pytest.raises(BackendError) as raised:
        await Launcher(queue).run(plan, "r1")
    # Then the error reaches the caller, and closing the queue does not wait for the job:
    # it was cancelled, to run again on resume
    assert raised.value is error
    await queue.close()
    assert JOURNAL.entries == ["long cancelled"]
