"""Job middleware: one onion method around each attempt, plus the unique-job guard.

The stack is, outermost first: the pipeline's ``defaults``, the job template's, the
step's, then the job class's own ``middleware()``. A middleware that does not call
``next_call`` skips the run; one that returns `Release` puts the job back to run
later, without spending an attempt.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from arvel_flow.errors import ImportTargetError, LockError
from arvel_flow.queue.context import current_context
from arvel_flow.queue.job import JobSettings, MiddlewareRef, format_key
from arvel_flow.queue.targets import import_object
from arvel_flow.secrets import resolve_secrets, scrub_text

if TYPE_CHECKING:
    # An annotation only: importing the lock package loads every lock driver (sqlite3).
    from arvel_flow.lock.contracts import LockContract

NextCall = Callable[[], Awaitable[Any]]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Release:
    """Returned by middleware (or ``handle``) to run the job again after ``delay`` seconds."""

    delay: float
    reason: str = ""


class JobMiddleware:
    """Wraps the execution of a job; subclass and override `handle`."""

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        """Run ``next_call()`` (the rest of the stack, then the job) or not."""
        return await next_call()


def resolve_key(template: str, job: Any) -> str:
    """A lock or rate-limit key with ``{field}`` placeholders filled from the job."""
    try:
        key = format_key(template, job)
    except (KeyError, IndexError, ValueError) as error:
        raise LockError(template, f"cannot fill the key from the job's fields: {error}") from None
    if scrub_text(key) != key:
        # Keys are stored and shown: a key built from a secret (a reference in a forged
        # message, or a field holding one) would write it where secrets never go.
        raise LockError(template, "the key would hold a secret; build keys from other fields")
    return key


class RateLimited(JobMiddleware):
    """At most ``max_attempts`` runs per ``decay_seconds`` per key, across all workers.

    A job over the limit is released until the window has room: not dropped, and not
    counted as a failed attempt.
    """

    def __init__(self, key: str, max_attempts: int, decay_seconds: float) -> None:
        if max_attempts < 1 or decay_seconds <= 0:
            raise ValueError("max_attempts must be >= 1 and decay_seconds > 0")
        self.key = key
        self.max_attempts = max_attempts
        self.decay_seconds = float(decay_seconds)

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        """Count this run in the window, or release the job until it fits."""
        context = current_context()
        now = context.clock.now()
        key = "rate:" + resolve_key(self.key, job)
        free_at = await context.store.hit_rate_limit(
            key, self.max_attempts, self.decay_seconds, now
        )
        if free_at is not None:
            return Release(max(free_at - now, 0.0), f"rate limit {key}")
        return await next_call()


class WithoutOverlapping(JobMiddleware):
    """One run at a time per key; another copy is released for ``release_after`` seconds.

    The lock expires after ``expire_after`` seconds in case its holder dies; by default
    that is the job's timeout plus a minute (an hour for jobs without a timeout).
    """

    def __init__(
        self, key: str, release_after: float = 5, expire_after: float | None = None
    ) -> None:
        self.key = key
        self.release_after = float(release_after)
        self.expire_after = expire_after

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        """Hold the key's lock around the run, or release the job."""
        context = current_context()
        key = "overlap:" + resolve_key(self.key, job)
        owner = f"{context.envelope.id}:{context.attempt}"
        timeout = context.envelope.job.settings.timeout_seconds
        ttl = self.expire_after or (timeout + 60 if timeout > 0 else 3600.0)
        # The attempt's time limit covers the middleware too, so it may cancel the run
        # while a lock command is in flight; the command may reach the server all the
        # same. Each is seen through to its end, so the lock is never left held.
        taken, interrupted = await _to_the_end(context.lock.acquire(key, owner, ttl))
        if interrupted is not None:
            if taken:
                await _to_the_end(context.lock.release(key, owner))
            raise interrupted
        if not taken:
            return Release(self.release_after, f"overlapping {key}")
        try:
            return await next_call()
        finally:
            _, interrupted = await _to_the_end(context.lock.release(key, owner))
            if interrupted is not None:
                raise interrupted


async def _to_the_end(command: Awaitable[T]) -> tuple[T, asyncio.CancelledError | None]:
    """``command``'s result, with the cancellation of the caller that came meanwhile.

    A cancelled caller still waits for the command to end (it runs in a task of its
    own), so that it learns what the command did and can undo it; it must then raise
    the cancellation returned. The command's own error is raised, unless the caller
    was cancelled too: the cancellation wins.
    """
    task = asyncio.ensure_future(command)
    interrupted: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError as cancellation:
            interrupted = cancellation
    if interrupted is not None and (task.cancelled() or task.exception() is not None):
        raise interrupted
    return task.result(), interrupted


BUILTIN_MIDDLEWARE: dict[str, type[JobMiddleware]] = {
    "rate_limited": RateLimited,
    "without_overlapping": WithoutOverlapping,
}
"""Middleware the pipeline file may name without a dotted path."""


def build_middleware(ref: MiddlewareRef, *, allowed: Sequence[str] | None = None) -> JobMiddleware:
    """Instantiate a middleware from its ref (builtin name or dotted path)."""
    cls = BUILTIN_MIDDLEWARE.get(ref.use)
    if cls is None:
        cls = import_object(ref.use, allowed=allowed, role="middleware")
        if not (inspect.isclass(cls) and issubclass(cls, JobMiddleware)):
            raise ImportTargetError(ref.use, "not a JobMiddleware subclass")
    return cls(**resolve_secrets(ref.kwargs))


class UniqueJobGuard:
    """Refuses a second dispatch of a job while its unique lock is held.

    At dispatch a job with ``unique_for`` takes a lock on its unique id for that many
    seconds. The lock is released when the job finishes, or when it starts with
    ``unique_until_processing``.
    """

    def __init__(self, lock: LockContract) -> None:
        self.lock = lock

    @staticmethod
    def key_for(job: Any, settings: JobSettings, target: str) -> str:
        """The lock key of a job: its unique id template, ``get_unique_id()`` or its path."""
        if settings.unique_id is not None:
            return "unique:" + resolve_key(settings.unique_id, job)
        get_unique_id = getattr(job, "get_unique_id", None)
        if callable(get_unique_id):
            return "unique:" + str(get_unique_id())
        return "unique:" + target

    async def claim(self, job: Any, settings: JobSettings, target: str, owner: str) -> bool:
        """Take the unique lock at dispatch; False means the dispatch is a duplicate."""
        if not settings.unique_for:
            return True
        return await self.lock.acquire(
            self.key_for(job, settings, target), owner, settings.unique_for
        )

    async def release(
        self, job: Any, settings: JobSettings, target: str, owner: str | None
    ) -> None:
        """Give the unique lock back (only the dispatch that took it can)."""
        if settings.unique_for and owner is not None:
            await self.lock.release(self.key_for(job, settings, target), owner)


async def collect_middleware(
    job: Any, settings: JobSettings, *, allowed: Sequence[str] | None = None
) -> list[JobMiddleware]:
    """The whole stack for one attempt: configured refs first, the class's own last."""
    stack = [build_middleware(ref, allowed=allowed) for ref in settings.middleware]
    own = getattr(job, "middleware", None)
    if callable(own):
        extra = own()
        if not isinstance(extra, list) and inspect.isawaitable(extra):  # a list: most jobs
            extra = await extra
        stack.extend(extra or [])
    return stack


async def run_through(stack: Sequence[JobMiddleware], job: Any, core: NextCall) -> Any:
    """Call ``core`` inside ``stack``, the first middleware outermost."""
    if not stack:
        return await core()

    async def call(index: int) -> Any:
        if index == len(stack):
            return await core()
        return await stack[index].handle(job, lambda: call(index + 1))

    return await call(0)
