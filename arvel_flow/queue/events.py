"""Events emitted by the runner and the orchestration, to any number of listeners."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened: ``job.started``, ``batch.progress``, ``run.finished``, ...

    Job events carry ``step``, ``job`` (the class path) and ``attempt``; ``data`` holds
    the rest (error, delay, counters). Nothing secret is ever put in an event.

    Attributes:
        event: Its name, one of SPEC §5 (``run.started``, ``job.failed``, ...).
        time: When it happened, in seconds since the epoch (the queue's clock).
        run_id: The run it belongs to (None for a job sent without a run).
        step: The step's key in the plan (``root.0.1``), for step and job events.
        job: The job's class path, for job events.
        attempt: The attempt number (1 for the first), for job events.
        data: The rest, as `to_dict` writes it (``error``, ``delay``, ``counts``...).
    """

    event: str
    time: float
    run_id: str | None = None
    step: str | None = None
    job: str | None = None
    attempt: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-lines form of SPEC §5: fixed keys first, then ``data``."""
        out: dict[str, Any] = {"event": self.event, "time": self.time, "run_id": self.run_id}
        if self.step is not None:
            out["step"] = self.step
        if self.job is not None:
            out.update(job=self.job, attempt=self.attempt)
        out.update(self.data)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The event whose `to_dict` is ``data`` (as another process wrote it)."""
        rest = {k: v for k, v in data.items() if k not in _FIXED}
        attempt = data.get("attempt")
        return cls(
            str(data["event"]),
            float(data.get("time") or 0.0),
            data.get("run_id"),
            data.get("step"),
            data.get("job"),
            None if attempt is None else int(attempt),
            rest,
        )


_FIXED = frozenset(("event", "time", "run_id", "step", "job", "attempt"))


Listener = Callable[[Event], None]


class EventBus:
    """Fans events out to listeners; a listener that raises is logged, never fatal."""

    def __init__(self, *listeners: Listener) -> None:
        self._listeners: list[Listener] = list(listeners)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it.

        ``listener(event)`` is called in the emitting code, on the event loop, for every
        event: it must return at once (an exception it raises is logged and ignored).
        For code that may block or be slow, use `arvel_flow.Observers`, which feeds each
        observer through its own bounded queue.

        Example:
            >>> bus = EventBus()
            >>> seen = []
            >>> stop = bus.subscribe(lambda event: seen.append(event.event))
            >>> bus.emit(Event("run.started", 0.0, "r1"))
            >>> stop()
            >>> bus.emit(Event("run.finished", 1.0, "r1"))
            >>> seen
            ['run.started']
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @property
    def active(self) -> bool:
        """True when someone listens (lets hot paths skip building events)."""
        return bool(self._listeners)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every listener, in subscription order."""
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("event listener %r failed on %s", listener, event.event)
