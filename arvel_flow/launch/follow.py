"""Following a run that workers execute: its events live, its end without polling.

Workers publish the events of the runs they execute to a stream in the store's Redis
(`arvel_flow.store.run_events`). `RemoteFollower` reads it with a blocking ``XREAD``,
emits each event on the queue's bus (so the live view, plain lines and ``--output json``
show the same events as an embedded run) and ends at the run's ``run.finished``. Every
`SAFETY_CHECK` seconds it also looks at the store, so an event lost on the way (a worker
that could not write it) cannot make it wait forever; and, when the transport sees
heartbeats (`Watched`), says once when no worker consumes one of the run's queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from arvel_flow.durations import format_duration
from arvel_flow.errors import BackendError, OutageError, RunNotFoundError
from arvel_flow.outage import Outage
from arvel_flow.queue.events import Event
from arvel_flow.queue.front import Queue
from arvel_flow.queue.plan import FanOutNode, JobNode, Plan
from arvel_flow.queue.result import BatchResult
from arvel_flow.queue.transport import Watched
from arvel_flow.store.contracts import FINAL_RUN_STATUSES
from arvel_flow.store.run_events import FINAL_EVENT, RunEventReader

SAFETY_CHECK = 5.0
"""Seconds between looks at the store (and at the workers' heartbeats) while following."""


class RemoteFollower:
    """Follows one run on ``queue`` through ``reader``'s stream until it finishes.

    Args:
        queue: The queue the run was dispatched on (its bus gets the events).
        reader: The store's run event streams.
        say: Where the notice about missing workers goes (one line).
        heartbeat_timeout: Seconds without a heartbeat after which a worker is gone.
        outage: Rides through a store that is away for a while (none: fail at once).
        check_every: Seconds between safety checks (`SAFETY_CHECK`).
    """

    def __init__(
        self,
        queue: Queue,
        reader: RunEventReader,
        say: Callable[[str], None],
        *,
        heartbeat_timeout: float,
        outage: Outage | None = None,
        check_every: float = SAFETY_CHECK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.reader = reader
        self.say = say
        self.heartbeat_timeout = heartbeat_timeout
        self.outage = outage
        self.check_every = check_every
        self.clock = clock
        self._unserved: set[str] = set()

    async def wait(self, run_id: str, after: str) -> BatchResult:
        """Emit the run's events after stream entry ``after``; its result once it ended."""
        queues = queues_of(await self.queue.orchestrator.plan_of(run_id))
        if await self._check(run_id, queues):
            return await self.queue.orchestrator.result(run_id)
        next_check = self.clock() + self.check_every
        while True:
            block = max(next_check - self.clock(), 0.001)
            try:
                entries = await self.reader.read(run_id, after, block)
            except BackendError as error:
                await self._ride(error, run_id)
                continue
            finished = False
            for entry_id, data in entries:
                after = entry_id
                event = Event.from_dict(data)
                if self.queue.events.active:
                    self.queue.events.emit(event)
                finished = finished or (event.event == FINAL_EVENT and event.run_id == run_id)
            if finished:
                return await self.queue.orchestrator.result(run_id)
            if self.clock() >= next_check:
                next_check = self.clock() + self.check_every
                if await self._check(run_id, queues):
                    return await self.queue.orchestrator.result(run_id)

    async def _ride(self, error: BackendError, run_id: str) -> None:
        if self.outage is None or isinstance(error, OutageError):
            raise error
        await self.outage.call(lambda: self.queue.store.get_run(run_id), after=error)

    async def _check(self, run_id: str, queues: Sequence[str]) -> bool:
        """Whether the store says the run ended; say so when no worker serves a queue."""
        record = await self.queue.store.get_run(run_id)
        if record is None:
            raise RunNotFoundError(run_id)
        if record.status in FINAL_RUN_STATUSES:
            return True
        transport = self.queue.transport
        if isinstance(transport, Watched):
            ages = await transport.last_heartbeats(queues)
            for queue, age in ages.items():
                alive = age is not None and age <= self.heartbeat_timeout
                if alive:
                    self._unserved.discard(queue)
                elif queue not in self._unserved:
                    self._unserved.add(queue)
                    self.say(format_no_worker(queue, age))
        return False


def queues_of(plan: Plan) -> list[str]:
    """The queues the run's jobs are sent to, in the order they first appear."""
    names: dict[str, None] = {}
    for node in plan.nodes.values():
        if isinstance(node, JobNode | FanOutNode):
            names.setdefault(node.job.settings.queue_name, None)
    return list(names)


def format_no_worker(queue: str, age: float | None) -> str:
    """The notice that no worker consumes ``queue`` (its newest beat ``age`` seconds ago)."""
    seen = "never" if age is None else f"{format_duration(age)} ago"
    command = "arvel-flow worker --allow PREFIX"
    if queue != "default":
        command += f" --queues {queue}"
    return (
        f"no worker is consuming queue {queue!r} (last heartbeat: {seen}); "
        f"waiting - start one with: {command}"
    )
