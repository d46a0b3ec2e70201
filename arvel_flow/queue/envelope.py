"""The message that carries one job through a queue, and its JSON form."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

from arvel_flow.queue.targets import JobRef


def new_id() -> str:
    """A fresh random id (32 hex digits, 128 random bits)."""
    return os.urandom(16).hex()


def delivery_mark(run_id: str, step: str) -> str:
    """The lock key a worker takes for the message a step runs from (one per step)."""
    return f"delivery:{run_id}:{step}"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One delivery of a job: what to run and where it stands.

    ``attempts`` counts attempts already made (releases are not attempts);
    ``exceptions`` counts those that raised. ``available_at`` is when the job may run
    (a delay, a backoff, a release); 0 means now. ``trace`` is the W3C ``traceparent``
    of the span the job's attempts are children of (its chain or batch), when the
    process that dispatched it traces (`arvel_flow.queue.spans`); a message without
    one runs the same.
    """

    job: JobRef
    id: str
    run_id: str | None = None
    step: str | None = None
    attempts: int = 0
    exceptions: int = 0
    first_attempt_at: float | None = None
    available_at: float = 0.0
    unique_owner: str | None = None
    trace: str | None = None

    @property
    def label(self) -> str:
        """The step key in a run, or the job's path for a lone dispatch."""
        return self.step or self.job.target

    def next(self, **changes: Any) -> Envelope:
        """A copy for the next delivery."""
        return replace(self, **changes)

    def to_json(self) -> str:
        """The wire form, for brokers that cross processes."""
        return json.dumps(
            {
                "v": 1,
                "id": self.id,
                "job": self.job.to_dict(),
                "run_id": self.run_id,
                "step": self.step,
                "attempts": self.attempts,
                "exceptions": self.exceptions,
                "first_attempt_at": self.first_attempt_at,
                "available_at": self.available_at,
                "unique_owner": self.unique_owner,
                **({"trace": self.trace} if self.trace is not None else {}),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        """Read the wire form; raises ValueError (with the reason) when it is not ours."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("not an arvel-flow envelope (version 1)")
            return cls(
                job=JobRef.from_dict(data["job"]),
                id=str(data["id"]),
                run_id=data.get("run_id"),
                step=data.get("step"),
                attempts=int(data.get("attempts", 0)),
                exceptions=int(data.get("exceptions", 0)),
                first_attempt_at=data.get("first_attempt_at"),
                available_at=float(data.get("available_at") or 0.0),
                unique_owner=data.get("unique_owner"),
                trace=data.get("trace"),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"malformed envelope: {error!r}") from None
