"""What a running job and its middleware can see: the store, lock, clock and delivery."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Annotations only: middleware imports this module, and the strict checks of
    # ``validate`` import middleware, which should not load the stores for it.
    from arvel_flow.lock.contracts import LockContract
    from arvel_flow.queue.clock import Clock
    from arvel_flow.queue.envelope import Envelope
    from arvel_flow.store.contracts import StoreContract


@dataclass(frozen=True, slots=True)
class JobContext:
    """The execution around one attempt, set by `JobRunner` for its duration."""

    envelope: Envelope
    store: StoreContract
    lock: LockContract
    clock: Clock

    @property
    def attempt(self) -> int:
        """This attempt's number, from 1."""
        return self.envelope.attempts + 1


_current: ContextVar[JobContext] = ContextVar("arvel_flow_job_context")


def current_context() -> JobContext:
    """The context of the attempt running in this task; RuntimeError outside one."""
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "no job is running in this task (use inside handle or middleware)"
        ) from None


def set_context(context: JobContext) -> object:
    """Enter ``context``; pass the returned token to `reset_context`."""
    return _current.set(context)


def reset_context(token: object) -> None:
    """Leave the context entered with ``token``."""
    _current.reset(token)  # type: ignore[arg-type]
