"""Every error arvel-flow raises on purpose, under one base class.

```
FlowError
├── ConfigError          .issues: tuple[ConfigIssue, ...]   invalid pipeline or argument (exit 2)
├── ImportTargetError    .path, .reason                     a dotted path cannot be used
├── JobError             .job
│   ├── JobTimeoutError        .timeout_seconds
│   └── JobFailedError         .attempts   (__cause__ = the last error)
│       └── JobMaxRetriesError       attempts exhausted
├── BackendError         .backend   broker or store unreachable (exit 3)
│   ├── BackendFullError       it refuses writes: out of memory
│   └── OutageError            .grace   unreachable (or full) for longer than that
├── LockError            .key
├── RunNotFoundError     .run_id
├── UnreadableMessageError .reason   a worker got a message that is not an envelope
└── DeliveryLimitError   .deliveries a message whose workers kept dying
```

The CLI maps each to its exit code and prints the message only; anything that is not a
`FlowError` is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass


class FlowError(Exception):
    """Base of every error arvel-flow raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a pipeline file or argument, with its position when known.

    ``line`` and ``column`` are 1-based; ``path`` is the location inside the document,
    such as ``retry_policies.standard.max_retries``.
    """

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def format(self) -> str:
        """Render as ``FILE:LINE:COL: error: PATH: MESSAGE``, as compilers do."""
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        subject = f"{self.path}: " if self.path else ""
        return f"{where}: error: {subject}{self.message}"


class ConfigError(FlowError):
    """A pipeline file, setting or argument is invalid; carries every issue found."""

    def __init__(self, issues: tuple[ConfigIssue, ...] | list[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(issue.format() for issue in self.issues))


class ImportTargetError(FlowError):
    """A dotted path does not name something arvel-flow can run or use."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot use {path!r}: {reason}")


class JobError(FlowError):
    """A job could not run to success; ``job`` is its class path."""

    def __init__(self, message: str, *, job: str) -> None:
        self.job = job
        super().__init__(message)


class JobTimeoutError(JobError):
    """An attempt ran past ``timeout_seconds`` and was cancelled."""

    def __init__(self, *, job: str, timeout_seconds: float) -> None:
        self.timeout_seconds = timeout_seconds
        super().__init__(f"{job} timed out after {timeout_seconds:g}s", job=job)


class JobFailedError(JobError):
    """A job failed permanently; ``__cause__`` is the last error it raised."""

    def __init__(self, message: str, *, job: str, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(message, job=job)


class JobMaxRetriesError(JobFailedError):
    """A job failed on every attempt it was allowed."""


class BackendError(FlowError):
    """A broker or store could not be reached; ``backend`` names it (password masked)."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        super().__init__(f"{backend} could not be reached: {reason}")


class BackendFullError(BackendError):
    """A broker or store is reachable but refuses writes (Redis at its ``maxmemory``)."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        FlowError.__init__(self, f"{backend} refused the write: out of memory ({reason})")


class OutageError(BackendError):
    """A broker or store failed for longer than ``grace`` seconds: given up on.

    ``__cause__`` is the last failure, whose message this one repeats.
    """

    def __init__(self, error: BackendError, grace: float) -> None:
        self.backend = error.backend
        self.grace = grace
        FlowError.__init__(self, f"{error}; gave up after {grace:g}s")


class LockError(FlowError):
    """A lock key could not be built or used."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        super().__init__(f"lock {key!r}: {reason}")


class RunNotFoundError(FlowError):
    """No run with this id is in the store."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run {run_id!r} in the store")


class UnreadableMessageError(FlowError):
    """A message is not an arvel-flow envelope (bad JSON, another task, a broken envelope).

    ``reason`` says what is wrong; the message itself is never echoed, since it may
    hold secrets.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"unreadable message: {reason}")


class DeliveryLimitError(FlowError):
    """A message was delivered ``deliveries`` times and never finished: its workers died."""

    def __init__(self, deliveries: int) -> None:
        self.deliveries = deliveries
        super().__init__(
            f"delivered {deliveries} times without finishing: each worker that took it "
            "stopped (killed, crashed or out of memory) before it was done"
        )
