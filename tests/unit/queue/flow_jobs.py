"""Job classes, functions and middleware for the queue tests, importable by dotted path.

They live at module level so that a plan stored as JSON (sqlite, redis) or a resumed
run can import them again as ``tests.unit.queue.flow_jobs:Name`` (`JOBS` + ``:Name``).
Everything they do goes into `JOURNAL`, which the ``journal`` fixture empties before
each test: counting per name rather than per instance keeps working when a job is
rebuilt from its parameters.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from arvel_flow.queue.context import current_context
from arvel_flow.queue.job import Job
from arvel_flow.queue.middleware import JobMiddleware, NextCall, Release
from arvel_flow.queue.targets import import_object


class Journal:
    """What the test jobs did, in order.

    ``entries`` has a line per run of a job (and what middleware saw); ``timeline``
    has ``name>`` when a `Step` starts and ``<name`` when it ends.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (before each test)."""
        self.entries: list[str] = []
        self.timeline: list[str] = []
        self.calls: Counter[str] = Counter()
        self.raised: dict[str, list[BaseException]] = {}
        self.failures: list[tuple[str, BaseException]] = []
        self.started_at: dict[str, list[float]] = {}
        self.running = 0
        self.max_running = 0
        self.seen: dict[str, Any] = {}

    def runs_of(self, name: str) -> int:
        """How many times the job called ``name`` ran its ``handle()``."""
        return self.calls[name]


JOURNAL = Journal()

JOBS = __name__
"""This module's dotted path, as job and middleware paths start: ``f"{JOBS}:Step"``."""


class TransientError(Exception):
    """An error a retry policy may name by dotted path."""


class Step(Job):
    """Records each attempt; fails its first ``fail_times`` attempts (-1: every attempt).

    ``hold`` keeps it running that many real seconds, to measure overlap. Test steps
    do not retry unless told to, so that orchestration tests stay short.
    """

    max_retries: int = 0
    backoff: int | float | list[int | float] | Literal["exponential"] = 0

    name: str
    fail_times: int = 0
    error: str = "RuntimeError"
    hold: float = 0.0

    async def handle(self) -> str:
        JOURNAL.calls[self.name] += 1
        attempt = JOURNAL.calls[self.name]
        JOURNAL.entries.append(self.name)
        JOURNAL.timeline.append(f"{self.name}>")
        JOURNAL.started_at.setdefault(self.name, []).append(current_context().clock.now())
        JOURNAL.running += 1
        JOURNAL.max_running = max(JOURNAL.max_running, JOURNAL.running)
        try:
            if self.hold:
                await asyncio.sleep(self.hold)
        finally:
            JOURNAL.running -= 1
            JOURNAL.timeline.append(f"<{self.name}")
        if self.fail_times == -1 or attempt <= self.fail_times:
            error = import_object(self.error)(f"{self.name} failed on attempt {attempt}")
            JOURNAL.raised.setdefault(self.name, []).append(error)
            raise error
        return f"{self.name} done"

    async def on_failure(self, error: BaseException) -> None:
        JOURNAL.failures.append((self.name, error))


class Flaky(Job):
    """Fails its first ``fail_times`` attempts (-1: every one); retries as `Job` does.

    It keeps the Job defaults (3 retries, 60 s apart) unless a test sets others.
    """

    name: str
    fail_times: int = -1
    error: str = "RuntimeError"

    async def handle(self) -> str:
        JOURNAL.calls[self.name] += 1
        attempt = JOURNAL.calls[self.name]
        JOURNAL.started_at.setdefault(self.name, []).append(current_context().clock.now())
        if self.fail_times == -1 or attempt <= self.fail_times:
            error = import_object(self.error)(f"{self.name} failed on attempt {attempt}")
            JOURNAL.raised.setdefault(self.name, []).append(error)
            raise error
        return f"{self.name} done"

    async def on_failure(self, error: BaseException) -> None:
        JOURNAL.failures.append((self.name, error))


class Sleeper(Job):
    """Sleeps ``seconds`` (real time) on its first ``slow_times`` attempts; may then raise."""

    max_retries: int = 0
    backoff: int | float | list[int | float] | Literal["exponential"] = 0

    name: str
    seconds: float = 10.0
    slow_times: int = -1
    raise_after: bool = False

    async def handle(self) -> str:
        JOURNAL.calls[self.name] += 1
        attempt = JOURNAL.calls[self.name]
        if self.slow_times == -1 or attempt <= self.slow_times:
            try:
                await asyncio.sleep(self.seconds)
            except asyncio.CancelledError:
                JOURNAL.entries.append(f"{self.name} cancelled")
                raise
            JOURNAL.entries.append(f"{self.name} slept")
        if self.raise_after:
            error = RuntimeError(f"{self.name} raised on attempt {attempt}")
            JOURNAL.raised.setdefault(self.name, []).append(error)
            raise error
        return f"{self.name} done"

    async def on_failure(self, error: BaseException) -> None:
        JOURNAL.failures.append((self.name, error))


class Secretive(Job):
    """Always fails; carries fields that must never reach the failed-jobs store."""

    max_retries: int = 0

    user: str
    password: str = "hunter2"
    api_key: str = "ak-123"
    auth_token: str = "tok-456"
    client_secret: str = "cs-789"
    dsn: SecretStr = SecretStr("postgres://u:pw@db/app")
    count: int = 1

    async def handle(self) -> None:
        raise RuntimeError(f"cannot import for {self.user}")


class DuckJob(BaseModel):
    """Not an arvel-flow Job: a plain Pydantic model with an async handle (an Arvel job)."""

    name: str
    fail: bool = False

    async def handle(self) -> str:
        JOURNAL.calls[self.name] += 1
        JOURNAL.started_at.setdefault(self.name, []).append(current_context().clock.now())
        if self.fail:
            raise RuntimeError(f"{self.name} failed")
        return f"{self.name} done"


class DuckJobWithSettings(DuckJob):
    """A duck-typed job that sets some settings itself (the rest are Job defaults)."""

    max_retries: int = 1
    backoff: int = 7


def sync_function(name: str, times: int = 1) -> str:
    """A plain function run as a job (in a worker thread)."""
    JOURNAL.calls[name] += times
    JOURNAL.entries.append(f"sync {name} x{times}")
    return name * times


async def async_function(name: str, times: int = 1) -> str:
    """A plain coroutine function run as a job."""
    JOURNAL.calls[name] += times
    JOURNAL.entries.append(f"async {name} x{times}")
    return name * times


def failing_function(name: str) -> None:
    """A plain function that always raises."""
    JOURNAL.calls[name] += 1
    raise ValueError(f"{name} is broken")


# Middleware ----------------------------------------------------------------------------


class Recording(JobMiddleware):
    """Records entering and leaving, to show the order of the stack."""

    def __init__(self, label: str) -> None:
        self.label = label

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        JOURNAL.entries.append(f"{self.label}>")
        try:
            return await next_call()
        finally:
            JOURNAL.entries.append(f"<{self.label}")


class Skip(JobMiddleware):
    """Never calls ``next_call``: the job does not run."""

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        JOURNAL.entries.append("skipped by middleware")
        return None


class ReleaseFirst(JobMiddleware):
    """Releases the job for ``delay`` seconds on its first ``times`` deliveries."""

    def __init__(self, times: int, delay: float = 10.0, counter: str = "release") -> None:
        self.times = times
        self.delay = delay
        self.counter = counter

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        JOURNAL.calls[self.counter] += 1
        if JOURNAL.calls[self.counter] <= self.times:
            return Release(self.delay, "not yet")
        return await next_call()


class FreeLockOnDelivery(JobMiddleware):
    """Plays another worker that holds ``key`` and gives it up on delivery number ``n``."""

    def __init__(self, key: str, owner: str, n: int) -> None:
        self.key = key
        self.owner = owner
        self.n = n

    async def handle(self, job: Any, next_call: NextCall) -> Any:
        JOURNAL.calls["deliveries"] += 1
        if JOURNAL.calls["deliveries"] == self.n:
            await current_context().lock.release(self.key, self.owner)
        return await next_call()


class OwnMiddleware(Job):
    """A job whose class adds middleware of its own (sync ``middleware()``)."""

    max_retries: int = 0

    async def handle(self) -> None:
        JOURNAL.entries.append("handle")

    def middleware(self) -> list[JobMiddleware]:
        return [Recording("own")]


class AsyncOwnMiddleware(Job):
    """A job whose ``middleware()`` is async."""

    max_retries: int = 0

    async def handle(self) -> None:
        JOURNAL.entries.append("handle")

    async def middleware(self) -> list[JobMiddleware]:  # type: ignore[override]
        return [Recording("own-async")]


class UserJob(Job):
    """A job keyed by a user: for rate limits, overlap locks and uniqueness."""

    max_retries: int = 0
    backoff: int | float | list[int | float] | Literal["exponential"] = 0

    user_id: int
    name: str = "user"

    async def handle(self) -> str:
        label = f"{self.name}-{self.user_id}"
        JOURNAL.calls[label] += 1
        JOURNAL.entries.append(label)
        JOURNAL.started_at.setdefault(label, []).append(current_context().clock.now())
        return label


class LockProbe(Job):
    """Reports, from inside ``handle()``, who holds ``key`` now and after sleeping.

    ``sleeps`` are waits through the job's clock (a fake clock in tests): the lock
    is looked at after each one, as a holder that hangs would see it.
    """

    max_retries: int = 0

    user_id: int = 1
    key: str
    sleeps: list[float] = []

    async def handle(self) -> None:
        context = current_context()
        owners = [await context.lock.owner(self.key)]
        for seconds in self.sleeps:
            await context.clock.sleep(seconds)
            owners.append(await context.lock.owner(self.key))
        JOURNAL.seen[f"owners-{self.user_id}"] = owners


class UniquePerUser(UserJob):
    """Unique per user through its own ``get_unique_id()``, not a template."""

    unique_for: int | None = 60

    def get_unique_id(self) -> str:
        return f"per-user-{self.user_id}"


class BrokenHook(Job):
    """Fails, and its ``on_failure`` hook fails too."""

    max_retries: int = 0

    async def handle(self) -> None:
        raise RuntimeError("the job broke")

    async def on_failure(self, error: BaseException) -> None:
        JOURNAL.failures.append(("broken-hook", error))
        raise ValueError("the hook broke as well")


class SyncHandle(Job):
    """A mistake: a Job whose ``handle()`` is not async."""

    def handle(self) -> str:  # type: ignore[override]
        JOURNAL.calls["sync-handle"] += 1
        return "done"


class DbConfig(BaseModel):
    """A nested parameter model holding a secret."""

    host: str
    dsn: SecretStr


class NestedSecrets(Job):
    """Always fails; its secrets sit inside a nested model and a list."""

    max_retries: int = 0

    db: DbConfig
    keys: list[SecretStr] = []

    async def handle(self) -> None:
        raise RuntimeError("nested secrets job failed")


class Blabbermouth(Job):
    """Fails with an error message that quotes its own secrets."""

    max_retries: int = 1
    backoff: int | float | list[int | float] | Literal["exponential"] = 0

    password: str = "correct-horse"
    dsn: SecretStr = SecretStr("postgres://u:battery@db/app")

    async def handle(self) -> None:
        raise ConnectionError(
            f"login with {self.password} to {self.dsn.get_secret_value()} refused"
        )


class TokenUser(Job):
    """Notes the token it was given under its name (a secret field given in Python)."""

    max_retries: int = 0
    name: str
    api_token: str

    async def handle(self) -> None:
        JOURNAL.calls[self.name] += 1
        JOURNAL.seen[self.name] = self.api_token
