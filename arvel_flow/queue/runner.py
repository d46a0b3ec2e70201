"""`JobRunner`: one attempt of a job through its middleware, timeout and failure hooks.

`attempt` runs once and says what comes next (succeeded, retry at T, released until T,
failed for good); drivers schedule the next delivery, so a job waiting out its backoff
holds no worker slot. `execute` runs the whole attempt loop in place, waiting between
attempts, for callers that want a job done here and now.
"""

from __future__ import annotations

import inspect
import logging
import random
import traceback
from dataclasses import dataclass
from functools import partial
from typing import Any

import pydantic

from arvel_flow.errors import (
    ImportTargetError,
    JobFailedError,
    JobMaxRetriesError,
    JobTimeoutError,
    LockError,
    SecretError,
)
from arvel_flow.lock.contracts import LockContract
from arvel_flow.queue import spans
from arvel_flow.queue.backoff import GiveUp, exception_classes, next_step
from arvel_flow.queue.clock import Clock, SystemClock
from arvel_flow.queue.context import JobContext, reset_context, set_context
from arvel_flow.queue.deadlines import Deadlines
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.joblogs import AttemptLog, enter_attempt, leave_attempt
from arvel_flow.queue.middleware import Release, UniqueJobGuard, collect_middleware, run_through
from arvel_flow.queue.redaction import (
    declared_secret_fields,
    scrub,
    secret_fields,
    secret_values,
    stored_params,
    wrapped_secret_values,
)
from arvel_flow.queue.targets import JobRef, failure_hook, resolve_target
from arvel_flow.store.contracts import FailedJob, StoreContract
from arvel_flow.store.memory import MemoryStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The attempt succeeded; ``attempts`` counts every attempt made."""

    result: Any
    attempts: int


@dataclass(frozen=True, slots=True)
class Retrying:
    """The attempt failed and the job runs again as ``envelope`` (at its ``available_at``)."""

    envelope: Envelope
    error: BaseException
    message: str
    """The error as ``Class: message``, secrets scrubbed."""


@dataclass(frozen=True, slots=True)
class Released:
    """Middleware put the job back; it runs again as ``envelope``, no attempt spent."""

    envelope: Envelope
    reason: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The job failed for good: hooks ran and the failure is in the failed-jobs store."""

    error: BaseException
    attempts: int
    reason: str
    message: str
    """The error as ``Class: message``, secrets scrubbed."""


Outcome = Succeeded | Retrying | Released | Failed

_BAD_JOB = (
    ImportTargetError,
    pydantic.ValidationError,
    LockError,
    SecretError,
    TypeError,
    ValueError,
)
"""Errors that mean the job cannot even be built: failed at once, never retried."""


class _UnbuildableMiddleware(Exception):
    """The job's middleware stack cannot be built: like a job that cannot be, not retried."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class JobRunner:
    """Executes jobs: middleware, retries and backoff, timeouts, failure hooks and records."""

    def __init__(
        self,
        *,
        store: StoreContract | None = None,
        lock: LockContract | None = None,
        events: EventBus | None = None,
        clock: Clock | None = None,
        allowed_modules: tuple[str, ...] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.lock = lock if lock is not None else self.store.lock()
        self.events = events if events is not None else EventBus()
        self.clock = clock if clock is not None else SystemClock()
        self.allowed_modules = allowed_modules
        self.guard = UniqueJobGuard(self.lock)
        self._rng = rng
        self._deadlines = Deadlines()  # one timer for every attempt's time limit

    async def execute(self, job: Any) -> Any:
        """Run ``job`` to the end in place, waiting between attempts; return its result.

        Raises `JobMaxRetriesError` (or `JobFailedError` when the error was not to be
        retried) with the last error as ``__cause__``.
        """
        envelope = Envelope(JobRef.of(job), new_id())
        while True:
            outcome = await self.attempt(envelope)
            if isinstance(outcome, Succeeded):
                return outcome.result
            if isinstance(outcome, Failed):
                exhausted = outcome.attempts > envelope.job.settings.max_retries
                error_cls = JobMaxRetriesError if exhausted else JobFailedError
                target = envelope.job.target
                message = f"{target} failed after {outcome.attempts} attempt(s): {outcome.reason}"
                raise error_cls(message, job=target, attempts=outcome.attempts) from outcome.error
            envelope = outcome.envelope
            await self.clock.sleep(envelope.available_at - self.clock.now())

    async def attempt(self, envelope: Envelope) -> Outcome:
        """Run one attempt of ``envelope`` and decide what follows (in its span, if traced)."""
        tracer = spans.hooks
        if tracer is None:
            return await self._attempt(envelope)
        return await tracer.attempt(envelope, self._attempt)

    async def _attempt(self, envelope: Envelope) -> Outcome:
        ref = envelope.job
        try:
            job = ref.build(allowed=self.allowed_modules)
        except _BAD_JOB as error:
            return await self._fail(
                None, envelope, error, envelope.attempts, "the job could not be built"
            )
        if ref.settings.retry_on or ref.settings.dont_retry_on:
            # Checked before the run: found only after a failure, a name that cannot be
            # imported would escape the attempt and the delivery would be lost.
            try:
                names = ref.settings.retry_on + ref.settings.dont_retry_on
                exception_classes(names, self.allowed_modules)
            except ImportTargetError as error:
                reason = "its retry policy names an exception that cannot be imported"
                return await self._fail(job, envelope, error, envelope.attempts, reason)
        now = self.clock.now()
        first_attempt_at = (
            envelope.first_attempt_at if envelope.first_attempt_at is not None else now
        )
        if envelope.attempts == 0 and ref.settings.unique_until_processing:
            await self.guard.release(job, ref.settings, ref.target, envelope.unique_owner)
        number = envelope.attempts + 1
        self._emit("job.started", envelope, number)
        try:
            if self.events.active:
                result = await self._run_logged(job, envelope)
            else:  # no one would hear the job's records: nothing to set up
                result = await self._run_once(job, envelope)
        except _UnbuildableMiddleware as wrapped:
            reason = "its middleware could not be built"
            return await self._fail(job, envelope, wrapped.error, number, reason)
        except LockError as error:
            # A key naming a field the job lacks fails the same way every time.
            reason = "a lock or rate-limit key could not be built from its fields"
            return await self._fail(job, envelope, error, number, reason)
        except Exception as error:
            timed_out = isinstance(error, JobTimeoutError)
            exceptions = envelope.exceptions + (0 if timed_out else 1)
            decision = next_step(
                error,
                attempts=number,
                exceptions=exceptions,
                first_attempt_at=first_attempt_at,
                now=self.clock.now(),
                settings=ref.settings,
                rng=self._rng,
                allowed=self.allowed_modules,
            )
            if isinstance(decision, GiveUp):
                return await self._fail(job, envelope, error, number, decision.reason)
            retry = envelope.next(
                attempts=number,
                exceptions=exceptions,
                first_attempt_at=first_attempt_at,
                available_at=decision.at,
            )
            message = scrub(describe_error(error), self._secret_values(job, ref))
            self._emit(
                "job.retrying",
                envelope,
                number,
                error=message,
                delay=round(decision.at - self.clock.now(), 3),
                max_attempts=ref.settings.max_retries + 1,
            )
            return Retrying(retry, error, message)
        if isinstance(result, Release):
            released = envelope.next(
                first_attempt_at=first_attempt_at, available_at=self.clock.now() + result.delay
            )
            self._emit("job.released", envelope, number, delay=result.delay, reason=result.reason)
            return Released(released, result.reason)
        if ref.settings.unique_for:
            await self.guard.release(job, ref.settings, ref.target, envelope.unique_owner)
        self._emit("job.succeeded", envelope, number)
        return Succeeded(result, number)

    async def _run_logged(self, job: Any, envelope: Envelope) -> Any:
        """`_run_once`, its log records said as ``job.log`` events (someone listens)."""
        secrets = partial(self._secret_values, job, envelope.job)
        log = AttemptLog(self.events, envelope, envelope.attempts + 1, self.clock, secrets)
        token = enter_attempt(log)
        try:
            return await self._run_once(job, envelope)
        finally:
            leave_attempt(token)

    async def _run_once(self, job: Any, envelope: Envelope) -> Any:
        """Middleware, then ``handle()``, all under the timeout, with the context set."""
        settings = envelope.job.settings
        token = set_context(JobContext(envelope, self.store, self.lock, self.clock))
        try:
            try:
                stack = await collect_middleware(job, settings, allowed=self.allowed_modules)
            except _BAD_JOB as error:
                raise _UnbuildableMiddleware(error) from error
            if settings.timeout_seconds <= 0:
                return await run_through(stack, job, job.handle)
            limit = self._deadlines.limit(settings.timeout_seconds)
            try:
                with limit:
                    return await run_through(stack, job, job.handle)
            except TimeoutError:
                if limit.expired():
                    raise JobTimeoutError(
                        job=envelope.job.target, timeout_seconds=settings.timeout_seconds
                    ) from None
                raise
        finally:
            reset_context(token)

    async def fail(
        self, envelope: Envelope, error: BaseException, reason: str, *, build: bool
    ) -> Failed:
        """Fail a delivery for good without running it (a worker's refusal or give-up).

        With ``build``, the job is built (under the allowed modules) so that its
        ``on_failure`` runs; without, nothing of the job is imported.
        """
        job = None
        if build:
            try:
                job = envelope.job.build(allowed=self.allowed_modules)
            except Exception:  # it cannot be built: no hook to call, still a failure
                job = None
        return await self._fail(job, envelope, error, envelope.attempts, reason)

    async def _fail(
        self, job: Any, envelope: Envelope, error: BaseException, attempts: int, reason: str
    ) -> Failed:
        """Permanent failure: ``on_failure`` once, the failed-jobs record, the event."""
        ref = envelope.job
        if job is not None:
            await self._call_on_failure(job, error)
            await self.guard.release(job, ref.settings, ref.target, envelope.unique_owner)
        secrets = self._secret_values(job, ref)
        record = FailedJob(
            id=new_id(),
            job=ref.target,
            queue=ref.settings.queue_name,
            payload=self._payload(job, ref),
            exception=exception_path(error),
            message=scrub(_message(error), secrets),
            traceback=scrub(_traceback(error), secrets),
            attempts=attempts,
            failed_at=self.clock.now(),
            run_id=envelope.run_id,
            step=envelope.step,
            settings=ref.settings.to_dict(),
        )
        await self.store.add_failed(record)
        self._emit(
            "job.failed",
            envelope,
            attempts,
            error=scrub(describe_error(error), secrets),
            reason=reason,
            failed_id=record.id,
        )
        return Failed(error, attempts, reason, scrub(describe_error(error), secrets))

    def _payload(self, job: Any, ref: JobRef) -> dict[str, Any]:
        """The job's parameters for the failed-jobs store, as a plan stores them.

        Never the built job's: it holds the values its references resolved to. A live
        instance from Python is read with its `SecretStr` values still wrapped, so that
        secrets nested in sub-models are redacted too.
        """
        instance = ref.instance if ref.instance is not None else job
        return stored_params(ref.params, instance, self._secret_fields(job, ref))

    def _secret_values(self, job: Any, ref: JobRef) -> frozenset[str]:
        fields = self._secret_fields(job, ref)
        return secret_values(ref.params, fields) | wrapped_secret_values(job)

    def _secret_fields(self, job: Any, ref: JobRef) -> set[str] | frozenset[str]:
        """Fields holding secrets: from the instance, or as declared when it could not be built."""
        if job is not None:
            return secret_fields(job)
        try:
            target = resolve_target(ref.target, allowed=self.allowed_modules)
        except ImportTargetError:
            return frozenset()
        return declared_secret_fields(target.params_model)

    async def _call_on_failure(self, job: Any, error: BaseException) -> None:
        hook = failure_hook(job)
        if hook is None:
            return
        try:
            outcome = hook(error)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # The job has failed already; a broken hook must not hide that failure.
            logger.exception("on_failure of %s raised", type(job).__qualname__)

    def _emit(self, name: str, envelope: Envelope, attempt: int, **data: Any) -> None:
        if self.events.active:
            self.events.emit(
                Event(
                    name,
                    self.clock.now(),
                    envelope.run_id,
                    envelope.label,
                    envelope.job.target,
                    attempt,
                    {"queue": envelope.job.settings.queue_name, **data},
                )
            )


def exception_path(error: BaseException) -> str:
    """The error's class as a dotted path (a builtin by its bare name)."""
    cls = type(error)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _message(error: BaseException) -> str:
    """``str(error)``, except that a validation error does not echo the values it refused.

    A parameter that fails validation may be a secret of the wrong type (a numeric
    token): Pydantic's own message would put it in the record and the events.
    """
    if isinstance(error, pydantic.ValidationError):
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        lines = [f"{error.error_count()} validation error(s) for {error.title}"]
        lines += [f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems]
        return "\n".join(lines)
    return str(error)


def _traceback(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    if isinstance(error, pydantic.ValidationError):
        text = text.replace(str(error), _message(error))
    return text


def describe_error(error: BaseException) -> str:
    """``Class: message`` for events and run state, without echoing refused values."""
    return f"{exception_path(error)}: {_message(error)}"
