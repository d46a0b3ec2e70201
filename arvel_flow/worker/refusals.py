"""Messages a worker will not run: refused before anything outside the allowlist is imported.

A message is refused when it is not an arvel-flow envelope, when any dotted path in
it (the job, a middleware, a ``retry_on`` exception) is refused by the allowlist's rule
(`arvel_flow.queue.allowlist`), or when it was delivered more often than allowed (its
workers kept dying).
Each refusal becomes a failed-jobs record; inside a run, the step fails as if the job
had, so the run goes on (a batch counts the failure, a chain stops, ``catch`` runs).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence

from arvel_flow.errors import DeliveryLimitError, FlowError, ImportTargetError
from arvel_flow.queue.allowlist import Role, import_allowed, screen_path
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.events import Event
from arvel_flow.queue.front import Queue
from arvel_flow.queue.middleware import BUILTIN_MIDDLEWARE
from arvel_flow.queue.runner import Failed, describe_error, exception_path
from arvel_flow.store.contracts import FailedJob

logger = logging.getLogger(__name__)

UNREADABLE = "<unreadable message>"
"""The job name recorded for a message that holds no envelope."""


def compute_refusal(envelope: Envelope, allowed: Sequence[str]) -> ImportTargetError | None:
    """The first dotted path in ``envelope`` the allowlist refuses, as an error; else None.

    Every path is screened first, so a message refused for any of its paths imports
    nothing; then each is resolved, which imports modules under ``allowed`` only.
    Builtin middleware names import nothing.
    """
    settings = envelope.job.settings
    paths: list[tuple[str, Role]] = [(envelope.job.target, "job")]
    paths += [(m.use, "middleware") for m in settings.middleware if m.use not in BUILTIN_MIDDLEWARE]
    paths += [(name, "exception") for name in (*settings.retry_on, *settings.dont_retry_on)]
    try:
        for path, role in paths:
            screen_path(path, allowed, role)
        for path, role in paths:
            import_allowed(path, allowed, role)
    except ImportTargetError as error:
        return error
    return None


async def record_refusal(
    queue: Queue, error: Exception, *, envelope: Envelope | None, queue_name: str
) -> None:
    """Record a refused message as a failed job, and fail its step in its run.

    Nothing of the job is imported. What the run sends next goes through ``queue`` as
    usual (a worker collects it to send with the message's acknowledgement).
    """
    if envelope is None:
        await _record_unreadable(queue, error, queue_name)
        return
    failed = await queue.runner.fail(envelope, error, "refused by the worker", build=False)
    await _fail_step(queue, envelope, failed)


async def give_up(queue: Queue, envelope: Envelope, error: DeliveryLimitError) -> None:
    """Fail a job delivered too often: its ``on_failure`` (when it can be built), then record.

    Its paths passed the allowlist (it was screened), so building it is safe.
    """
    failed = await queue.runner.fail(envelope, error, "delivered too often", build=True)
    await _fail_step(queue, envelope, failed)


async def _fail_step(queue: Queue, envelope: Envelope, failed: Failed) -> None:
    logger.info("refused %s: %s", envelope.label, failed.message)
    if await _belongs_to_its_run(queue, envelope):
        await queue.orchestrator.job_finished(envelope, "failed", failed.attempts, failed.message)


async def _record_unreadable(queue: Queue, error: Exception, queue_name: str) -> None:
    """A message with no envelope: a failed-jobs record and an event, no run to advance."""
    now = queue.clock.now()
    described = describe_error(error)
    record = FailedJob(
        id=new_id(),
        job=UNREADABLE,
        queue=queue_name,
        payload={},
        exception=exception_path(error),
        message=str(error),
        traceback="".join(traceback.format_exception_only(error)),
        attempts=0,
        failed_at=now,
    )
    await queue.store.add_failed(record)
    logger.info("refused %s: %s", UNREADABLE, described)
    if queue.events.active:
        data = {"error": described, "reason": "refused by the worker", "failed_id": record.id}
        queue.events.emit(Event("job.failed", now, None, None, UNREADABLE, 0, data))


async def _belongs_to_its_run(queue: Queue, envelope: Envelope) -> bool:
    """True when the envelope names a run in the store and a step of its plan.

    A message naming a step its run does not have must not advance (or finish) the run.
    """
    if envelope.run_id is None or envelope.step is None:
        return False
    try:
        plan = await queue.orchestrator.plan_of(envelope.run_id)
        plan.node(envelope.step)
    except (FlowError, KeyError, ValueError, AssertionError, IndexError):
        return False
    return True
