"""Messages a worker will not run: refused before anything is imported, and recorded.

A message is refused when it is not an arvel-flow envelope, when any dotted path in
it (the job, a middleware, a ``retry_on`` exception) lies outside the allowed module
prefixes, or when it was delivered more often than allowed (its workers kept dying).
Each refusal becomes a failed-jobs record; inside a run, the step fails as if the job
had, so the run goes on (a batch counts the failure, a chain stops, ``catch`` runs).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence

from arvel_flow.errors import DeliveryLimitError, FlowError, ImportTargetError
from arvel_flow.queue.drivers.base import BaseQueue
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.events import Event
from arvel_flow.queue.middleware import BUILTIN_MIDDLEWARE
from arvel_flow.queue.redaction import redact
from arvel_flow.store.contracts import FailedJob

logger = logging.getLogger(__name__)

UNREADABLE = "<unreadable message>"
"""The job name recorded for a message that holds no envelope."""


def is_allowed(path: str, allowed: Sequence[str]) -> bool:
    """Whether the module of ``path`` lies under one of the ``allowed`` prefixes."""
    module = path.partition(":")[0] if ":" in path else path
    return any(module == prefix or module.startswith(prefix + ".") for prefix in allowed)


def compute_refusal(envelope: Envelope, allowed: Sequence[str]) -> ImportTargetError | None:
    """The first dotted path in ``envelope`` outside ``allowed``, as an error; else None.

    Bare names are builtins (exceptions) or builtin middleware, which import nothing.
    """
    settings = envelope.job.settings
    paths = [envelope.job.target]
    paths += [m.use for m in settings.middleware if m.use not in BUILTIN_MIDDLEWARE]
    paths += [n for n in (*settings.retry_on, *settings.dont_retry_on) if "." in n or ":" in n]
    for path in paths:
        if not is_allowed(path, allowed):
            return ImportTargetError(path, f"not under the allowed modules {list(allowed)}")
    return None


async def record_refusal(
    queue: BaseQueue, error: Exception, *, envelope: Envelope | None, queue_name: str
) -> None:
    """Record a refused message as a failed job, and fail its step in its run.

    What the run sends next goes through ``queue`` as usual (a worker collects it to
    send with the message's acknowledgement).
    """
    now = queue.clock.now()
    attempts = envelope.attempts if envelope is not None else 0
    described = f"{_exception_path(error)}: {error}"
    record = FailedJob(
        id=new_id(),
        job=envelope.job.target if envelope is not None else UNREADABLE,
        queue=queue_name,
        payload=redact(dict(envelope.job.params)) if envelope is not None else {},
        exception=_exception_path(error),
        message=str(error),
        traceback="".join(traceback.format_exception_only(error)),
        attempts=attempts,
        failed_at=now,
        run_id=envelope.run_id if envelope is not None else None,
        step=envelope.step if envelope is not None else None,
        settings=envelope.job.settings.to_dict() if envelope is not None else {},
    )
    await queue.store.add_failed(record)
    logger.info("refused %s: %s", record.step or record.job, described)
    if queue.events.active:
        label = envelope.label if envelope is not None else None
        data = {"error": described, "reason": "refused by the worker", "failed_id": record.id}
        queue.events.emit(
            Event("job.failed", now, record.run_id, label, record.job, attempts, data)
        )
    if envelope is not None and await _belongs_to_its_run(queue, envelope):
        await queue.orchestrator.job_finished(envelope, "failed", attempts, described)


async def give_up(queue: BaseQueue, envelope: Envelope, error: DeliveryLimitError) -> None:
    """Fail a job delivered too often: its ``on_failure`` (when it can be built), then record.

    Its class is under the allowed modules (it was screened), so building it is safe.
    """
    try:
        job = envelope.job.build(allowed=queue.runner.allowed_modules)
    except Exception:  # the job cannot be built: no hook to call, still a failure
        job = None
    if job is not None:
        hook = getattr(job, "on_failure", None)
        if hook is not None:
            try:
                await hook(error)
            except Exception:
                logger.exception("on_failure of %s raised", envelope.job.target)
        ref = envelope.job
        await queue.runner.guard.release(job, ref.settings, ref.target, envelope.unique_owner)
    queue_name = envelope.job.settings.queue_name
    await record_refusal(queue, error, envelope=envelope, queue_name=queue_name)


async def _belongs_to_its_run(queue: BaseQueue, envelope: Envelope) -> bool:
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


def _exception_path(error: BaseException) -> str:
    cls = type(error)
    return f"{cls.__module__}.{cls.__qualname__}"
