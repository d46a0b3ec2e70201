"""Log records a job emits, as ``job.log`` events of the attempt that emitted them.

`JobLogHandler` sits on the root logger (the CLI installs it with `capture_job_logs`).
A record emitted while an attempt runs with someone listening becomes a ``job.log``
event (``level``, ``logger``, ``message``) carrying the attempt's run id, step, job and
number; any other record goes where it went before (`logging.lastResort`: stderr,
WARNING and up), or to the ``outside`` handler given.

Each attempt's `AttemptLog` bounds what it says: a burst of `BURST` lines, then `RATE` a
second; lines past that are counted and said as one "N log lines dropped" line. A
message is cut at `MAX_MESSAGE` characters and passes through the secret scrubber.
When no one listens, the runner makes no `AttemptLog` and a record costs one lookup.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from arvel_flow.queue.clock import Clock
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.redaction import scrub

BURST = 200
"""Lines an attempt may log at once before the rate applies."""
RATE = 50.0
"""Lines a second an attempt may log past its burst."""
MAX_MESSAGE = 4_000
"""Characters of one message kept; the rest is cut with a note of how many."""

_FORMATTER = logging.Formatter()

_current: ContextVar[AttemptLog | None] = ContextVar("arvel_flow_attempt_log", default=None)


class AttemptLog:
    """The ``job.log`` events of one attempt: its bucket, its drops, its secrets."""

    def __init__(
        self,
        events: EventBus,
        envelope: Envelope,
        attempt: int,
        clock: Clock,
        secrets: Callable[[], frozenset[str]],
    ) -> None:
        self._events = events
        self._envelope = envelope
        self._attempt = attempt
        self._clock = clock
        self._secrets = secrets
        self._known: frozenset[str] | None = None
        self._tokens = float(BURST)
        self._filled_at = clock.now()
        self._dropped = 0
        self._busy = False
        self._thread = threading.get_ident()
        self._loop = asyncio.get_running_loop()

    @property
    def busy(self) -> bool:
        """True while a line is being said: a listener that logs must not loop back."""
        return self._busy

    def record(self, record: logging.LogRecord) -> None:
        """Say ``record`` as a ``job.log`` event, or count it when over the rate."""
        now = self._clock.now()
        self._tokens = min(BURST, self._tokens + (now - self._filled_at) * RATE)
        self._filled_at = now
        if self._tokens < 1.0:
            self._dropped += 1
            return
        self._tokens -= 1.0
        self._say_dropped()
        self._say(record.levelname, record.name, self._scrub(format_message(record)), now)

    def close(self) -> None:
        """Say the lines dropped since the last one said (at the attempt's end)."""
        self._say_dropped()

    def _say_dropped(self) -> None:
        if self._dropped:
            count, self._dropped = self._dropped, 0
            message = f"{count:,} log line{'s' * (count != 1)} dropped (over {RATE:g} a second)"
            self._say("WARNING", "arvel_flow", message, self._clock.now())

    def _scrub(self, message: str) -> str:
        if self._known is None:
            self._known = self._secrets()
        return scrub(message, self._known)

    def _say(self, level: str, logger: str, message: str, at: float) -> None:
        event = Event(
            "job.log",
            at,
            self._envelope.run_id,
            self._envelope.label,
            self._envelope.job.target,
            self._attempt,
            {"level": level, "logger": logger, "message": message},
        )
        if threading.get_ident() != self._thread:
            # A thread the job started (`asyncio.to_thread`): listeners run on the loop.
            self._loop.call_soon_threadsafe(self._emit, event)
        else:
            self._emit(event)

    def _emit(self, event: Event) -> None:
        self._busy = True
        try:
            self._events.emit(event)
        finally:
            self._busy = False


def enter_attempt(log: AttemptLog) -> Token[AttemptLog | None]:
    """Say the records of this task (the attempt's) through ``log`` until `leave_attempt`."""
    return _current.set(log)


def leave_attempt(token: Token[AttemptLog | None]) -> None:
    """Stop saying records through the attempt's log; say what it dropped."""
    log = _current.get()
    _current.reset(token)
    if log is not None:
        log.close()


def format_message(record: logging.LogRecord) -> str:
    """The record's message with its traceback, if any, cut at `MAX_MESSAGE` characters."""
    message = record.getMessage()
    if record.exc_info:
        message = f"{message}\n{_FORMATTER.formatException(record.exc_info)}"
    if record.stack_info:
        message = f"{message}\n{_FORMATTER.formatStack(record.stack_info)}"
    if len(message) > MAX_MESSAGE:
        cut = len(message) - MAX_MESSAGE
        message = f"{message[:MAX_MESSAGE]}... ({cut:,} more characters)"
    return message


class JobLogHandler(logging.Handler):
    """Records of a running attempt to its `AttemptLog`; the rest to ``outside``.

    ``level`` is the least level of a job's records said; ``outside`` (default: what
    Python does with no handler, `logging.lastResort`) gets every other record.
    """

    def __init__(self, level: int = logging.INFO, outside: logging.Handler | None = None) -> None:
        super().__init__(logging.NOTSET)
        self.job_level = level
        self.outside = outside

    def emit(self, record: logging.LogRecord) -> None:
        """Route one record (never raises: a bad record is reported by `handleError`)."""
        log = _current.get()
        if log is not None and not log.busy:
            if record.levelno >= self.job_level:
                try:
                    log.record(record)
                except Exception:
                    self.handleError(record)
            return
        outside = self.outside or logging.lastResort
        if outside is not None and record.levelno >= outside.level:
            outside.handle(record)


@contextmanager
def capture_job_logs(
    level: int = logging.INFO, outside: logging.Handler | None = None
) -> Iterator[JobLogHandler]:
    """Install a `JobLogHandler` on the root logger for the block, then restore it."""
    root = logging.getLogger()
    handler = JobLogHandler(level, outside)
    least = min(level, outside.level if outside is not None else logging.WARNING)
    saved = root.level
    root.addHandler(handler)
    if saved != logging.NOTSET:  # NOTSET on the root lets every record through already
        root.setLevel(min(least, saved))
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)
