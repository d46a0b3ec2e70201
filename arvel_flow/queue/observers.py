"""Observers: user code that receives every event, without ever slowing or breaking a job.

An observer is named by a dotted path (``observers:`` in a pipeline file,
``ARVEL_FLOW_OBSERVERS`` for ``run`` and ``worker``), imported under the allowlist like a
job when the process has one. It is:

- a function, sync or ``async``, called with each `Event`;
- or a class, instantiated once with no arguments: its ``on_event`` method if it has
  one, else the instance itself, is called with each event (sync or ``async``).

Each observer has its own bounded queue, emptied by one background task: emitting an
event only puts it there. When the queue is full the event is dropped and counted. A
sync observer runs in a thread, so one that blocks never stalls the event loop. An
observer that raises is logged once per kind of exception (with its traceback); the
events it failed on are not retried. On `Observers.aclose` each queue is drained for
at most ``drain_timeout`` seconds; what is left counts as dropped, and one line per
observer says how many were.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from arvel_flow.errors import ImportTargetError
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.targets import import_object

logger = logging.getLogger(__name__)

Observer = Callable[[Event], Any]
"""What receives events: ``(event) -> None``, or ``async (event) -> None``."""

QUEUE_SIZE = 1000
"""Events one observer may have waiting before the next ones are dropped."""

DRAIN_TIMEOUT = 2.0
"""Seconds `Observers.aclose` waits for observers to take what is queued."""


def import_observer(path: str, *, allowed: Sequence[str] | None = None) -> Any:
    """The function or class ``path`` names, checked to be an observer, not instantiated.

    Raises:
        ImportTargetError: The path is refused, cannot be imported, or names no observer.
    """
    found = import_object(path, allowed=allowed, role="observer")
    if inspect.isclass(found):
        own = (vars(klass) for klass in found.__mro__[:-1])
        if not any("on_event" in names or "__call__" in names for names in own):
            raise ImportTargetError(path, "an observer class needs on_event() or __call__()")
    elif not (inspect.isfunction(found) or inspect.iscoroutinefunction(found)):
        raise ImportTargetError(path, f"not a function or class but {type(found).__name__}")
    return found


def load_observer(path: str, *, allowed: Sequence[str] | None = None) -> Observer:
    """The callable the observer ``path`` names (a class is instantiated, see module doc).

    Raises:
        ImportTargetError: See `import_observer`; or the class cannot be built with no
            arguments.
    """
    found = import_observer(path, allowed=allowed)
    if not inspect.isclass(found):
        return found  # type: ignore[no-any-return]
    try:
        instance = found()
    except Exception as error:
        raise ImportTargetError(
            path, f"an observer class is built with no arguments: {error}"
        ) from None
    method: Observer | None = getattr(instance, "on_event", None)
    return method if callable(method) else cast("Observer", instance)


def _is_async(observer: Observer) -> bool:
    call = getattr(observer, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(observer) or inspect.iscoroutinefunction(call)


async def _in_daemon_thread(observer: Observer, event: Event, name: str) -> Any:
    """``observer(event)`` in a daemon thread: one that never returns cannot hold up exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(error: BaseException | None, result: Any) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)

    def work() -> None:
        try:
            outcome: tuple[BaseException | None, Any] = (None, observer(event))
        except Exception as error:
            outcome = (error, None)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, name=f"observer {name}", daemon=True).start()
    return await future


class _Delivery:
    """One observer's bounded queue and the task that empties it."""

    def __init__(self, name: str, observer: Observer, size: int) -> None:
        self.name = name
        self.observer = observer
        self.is_async = _is_async(observer)
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        self._failed: set[str] = set()
        self.task: asyncio.Task[None] = asyncio.create_task(
            self._deliver(), name=f"observer {name}"
        )

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _deliver(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self._call(event)
            except Exception as error:
                self._report(error)
            finally:
                self.queue.task_done()

    async def _call(self, event: Event) -> None:
        if self.is_async:
            await self.observer(event)
        else:
            result = await _in_daemon_thread(self.observer, event, self.name)
            if inspect.isawaitable(result):
                await result

    def _report(self, error: Exception) -> None:
        kind = type(error).__qualname__
        if kind in self._failed:
            return
        self._failed.add(kind)
        logger.error(
            "observer %s raised %s (later %s errors of it are not logged again)",
            self.name,
            kind,
            kind,
            exc_info=error,
        )

    async def close(self, deadline: Awaitable[None]) -> None:
        """Wait for the queue to empty (until ``deadline`` ends), then stop the task."""
        waiter = asyncio.ensure_future(self.queue.join())
        await asyncio.wait([waiter, asyncio.ensure_future(deadline)], return_when="FIRST_COMPLETED")
        waiter.cancel()
        self.dropped += self.queue.qsize()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class Observers:
    """Observers subscribed to an `EventBus`, each fed through its own bounded queue.

    Create it inside a running event loop; `aclose` it before the loop ends.
    """

    def __init__(
        self,
        events: EventBus,
        observers: Sequence[tuple[str, Observer]],
        *,
        queue_size: int = QUEUE_SIZE,
        drain_timeout: float = DRAIN_TIMEOUT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.drain_timeout = drain_timeout
        self._sleep = sleep
        self._deliveries = [_Delivery(name, fn, queue_size) for name, fn in observers]
        self._unsubscribe = events.subscribe(self._offer) if self._deliveries else None

    @classmethod
    def load(
        cls, events: EventBus, paths: Sequence[str], *, allowed: Sequence[str] | None = None
    ) -> Observers:
        """Import the observers ``paths`` name and subscribe them to ``events``.

        Raises:
            ImportTargetError: One of them cannot be loaded (see `load_observer`).
        """
        return cls(events, [(path, load_observer(path, allowed=allowed)) for path in paths])

    def _offer(self, event: Event) -> None:
        for delivery in self._deliveries:
            delivery.offer(event)

    @property
    def dropped(self) -> dict[str, int]:
        """Events dropped so far, per observer."""
        return {delivery.name: delivery.dropped for delivery in self._deliveries}

    async def aclose(self) -> None:
        """Stop receiving, drain for at most ``drain_timeout`` seconds, report drops."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if not self._deliveries:
            return
        deadline = asyncio.ensure_future(self._sleep(self.drain_timeout))
        try:
            await asyncio.gather(*(d.close(asyncio.shield(deadline)) for d in self._deliveries))
        finally:
            deadline.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deadline
        for delivery in self._deliveries:
            if delivery.dropped:
                logger.warning(
                    "observer %s: %d event(s) dropped (it did not keep up)",
                    delivery.name,
                    delivery.dropped,
                )
        self._deliveries = []
