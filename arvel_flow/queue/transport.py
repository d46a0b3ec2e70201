"""How envelopes leave a `Queue`: the `Transport` protocol and its optional capabilities.

A queue front end (`arvel_flow.queue.front.Queue`) is composed with one transport, the
way an httpx ``Client`` is with its ``transport``. Every transport sends, counts and
closes; what else it can do is a capability the queue discovers once, in its
constructor, and offers as a property (`Queue.remote`, `Queue.pausable`):

- ``remote`` (every transport says): jobs run in workers elsewhere. No secret given
  in Python may travel (`check_sendable`), runs are not owned here (no lease), and an
  interrupted command detaches instead of pausing.
- `Attached`: the transport runs envelopes (or receives them back) in this process and
  calls into its queue to do so (`Executor`); the queue attaches itself.
- `Pausable`: the transport keeps a pool here that Ctrl-C can pause, whose running jobs
  can be cancelled, and that can be drained or joined.
- ``publishes_events`` (remote transports whose ``arvel-flow worker`` processes publish
  run events to a Redis store, `arvel_flow.store.run_events`): a run is followed
  through them. Absent means False (Taskiq's own workers publish nothing).
- `Watched`: a remote transport that sees its workers' heartbeats, so that following a
  run can say when no worker consumes its queue.

The transports: inline, null, local and kick (`arvel_flow.queue.transports`), and one
per broker (`arvel_flow.brokers.<name>.transport`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from arvel_flow.queue.clock import Clock
    from arvel_flow.queue.envelope import Envelope
    from arvel_flow.queue.runner import Outcome


class Transport(Protocol):
    """How envelopes leave a queue: to run here, or to a broker's workers."""

    @property
    def remote(self) -> bool:
        """Whether jobs run in workers elsewhere rather than in this process."""
        ...

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Send each envelope, to run at its ``available_at``."""
        ...

    async def size(self, queue: str) -> int:
        """Messages of ``queue`` waiting to run (delayed ones included)."""
        ...

    async def close(self) -> None:
        """Release connections and timers (a pool: stop it and let running jobs end)."""
        ...


class Executor(Protocol):
    """The queue, as the transport attached to it sees it."""

    @property
    def clock(self) -> Clock:
        """The clock delays are measured on."""
        ...

    async def process(self, envelope: Envelope) -> Outcome:
        """Run one delivery: one attempt, then schedule the next or advance the run."""
        ...

    def abandon(self, error: BaseException) -> None:
        """Stop the runs followed here because of ``error`` (a delivery failed)."""
        ...


@runtime_checkable
class Attached(Protocol):
    """A transport that calls back into its queue (`Executor`) to run envelopes."""

    def attach(self, queue: Executor) -> None:
        """Serve ``queue``; a transport serves one queue."""
        ...


@runtime_checkable
class Pausable(Protocol):
    """A transport that runs jobs in a pool here: what Ctrl-C and leases need."""

    def pause(self) -> None:
        """Start nothing more; running jobs go on, waiting ones stay put."""
        ...

    def cancel_running(self) -> None:
        """Cancel the jobs running now; they count as unfinished."""
        ...

    async def drain(self) -> None:
        """Wait until no job runs."""
        ...

    async def join(self) -> None:
        """Wait until nothing is running, ready or scheduled (paused: nothing running)."""
        ...


@runtime_checkable
class Watched(Protocol):
    """A remote transport that sees whether workers are alive (their heartbeats)."""

    async def last_heartbeats(self, queues: Sequence[str]) -> dict[str, float | None]:
        """Seconds since the newest worker heartbeat of each queue (None: never seen)."""
        ...


class Attachment:
    """The queue an `Attached` transport serves: set once, by the queue's constructor."""

    def __init__(self) -> None:
        self._queue: Executor | None = None

    def set(self, queue: Executor) -> None:
        """Serve ``queue``.

        Raises:
            ValueError: The transport serves another queue already.
        """
        if self._queue is not None and self._queue is not queue:
            raise ValueError("a transport serves one queue: make a new one for each")
        self._queue = queue

    @property
    def is_set(self) -> bool:
        """Whether the transport serves a queue yet."""
        return self._queue is not None

    @property
    def queue(self) -> Executor:
        """The queue served.

        Raises:
            RuntimeError: No queue was given the transport.
        """
        if self._queue is None:
            raise RuntimeError("this transport runs jobs only for a queue made with it")
        return self._queue
