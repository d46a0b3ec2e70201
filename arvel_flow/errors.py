"""Every error arvel-flow raises on purpose, under one base class.

```
FlowError
├── ConfigError          .issues: tuple[ConfigIssue, ...]   invalid pipeline or argument (exit 2)
├── ImportTargetError    .path, .reason                     a dotted path cannot be used
├── JobError             .job
│   ├── JobTimeoutError        .timeout_seconds
│   └── JobFailedError         .attempts   (__cause__ = the last error)
│       └── JobMaxRetriesError       attempts exhausted
├── BackendError         .backend, .reason   broker or store unreachable (exit 3)
│   ├── StoreFileError         .path, .action   the sqlite file could not be opened, read, written
│   ├── BackendFullError       it refuses writes: out of memory
│   └── OutageError            .grace   unreachable (or full) for longer than that
├── LockError            .key
├── RunNotFoundError     .run_id
├── RunOwnedError        .run_id, .owner   another live process executes the run (exit 2)
├── RunTakenOverError    .run_id, .owner   this process lost the run's lease (exit 130)
├── ClaimLostError       .key              a claim expired and was taken by another
├── UnreadableMessageError .reason   a worker got a message that is not an envelope
├── DeliveryLimitError   .deliveries a message whose workers kept dying
├── SecretError          .name       a secret reference that cannot be resolved here
└── FaultSpecError       .spec, .reason   a simulation's --fail spec is malformed or names
                                          no job step (exit 2)
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
    such as ``retry_policies.standard.max_retries``. A ``warning`` (an unset
    environment variable while validating) is reported without failing.
    """

    message: str
    path: str = ""
    file: str | None = None
    line: int | None = None
    column: int | None = None
    severity: str = "error"

    def format(self) -> str:
        """Render as ``FILE:LINE:COL: error: PATH: MESSAGE``, as compilers do."""
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        subject = f"{self.path}: " if self.path else ""
        return f"{where}: {self.severity}: {subject}{self.message}"


class ConfigError(FlowError):
    """A pipeline file, setting or argument is invalid; carries the issues found.

    ``omitted`` counts issues found but not carried: a file reports at most a few
    hundred (`arvel_flow.pipeline.problems.MAX_PROBLEMS`).
    """

    def __init__(
        self, issues: tuple[ConfigIssue, ...] | list[ConfigIssue], *, omitted: int = 0
    ) -> None:
        self.issues = tuple(issues)
        self.omitted = omitted
        lines = [issue.format() for issue in self.issues]
        if omitted:
            lines.append(f"... and {omitted:,} more {'problem' if omitted == 1 else 'problems'}")
        super().__init__("\n".join(lines))


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
        self.reason = reason
        super().__init__(self._describe())

    def _describe(self) -> str:
        return f"{self.backend} could not be reached: {self.reason}"


class StoreFileError(BackendError):
    """The sqlite store's file at ``path`` could not be opened, read or written (``action``).

    A full disk, an I/O error, a read-only file, a lock held by another process past the
    busy timeout, a file that is not a database; ``reason`` is sqlite's own words.
    """

    def __init__(self, path: str, reason: str, *, action: str = "written") -> None:
        self.path = path
        self.action = action
        super().__init__(f"sqlite:{path}", reason)

    def _describe(self) -> str:
        return f"the state store {self.path} could not be {self.action}: {self.reason}"


class BackendFullError(BackendError):
    """A broker or store is reachable but refuses writes (Redis at its ``maxmemory``)."""

    def _describe(self) -> str:
        return f"{self.backend} refused the write: out of memory ({self.reason})"


class OutageError(BackendError):
    """A broker or store failed for longer than ``grace`` seconds: given up on.

    ``__cause__`` is the last failure, whose message this one repeats.
    """

    def __init__(self, error: BackendError, grace: float) -> None:
        self.error = error
        self.grace = grace
        super().__init__(error.backend, error.reason)

    def _describe(self) -> str:
        return f"{self.error}; gave up after {self.grace:g}s"


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


class RunExistsError(FlowError):
    """A run with this id is in the store already: starting it again records nothing.

    A tick's run has the tick's id, so two schedulers starting it make one run; the
    second is told so by this error.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id!r} is in the store already")


class RunOwnedError(FlowError):
    """Another process holds the run's owner lease: it executes the run now.

    ``owner`` is the `arvel_flow.store.contracts.RunOwner` holding it; the message names
    it and says how to take over.
    """

    def __init__(self, run_id: str, owner: object, message: str) -> None:
        self.run_id = run_id
        self.owner = owner
        super().__init__(message)


class RunTakenOverError(FlowError):
    """This process lost a run's owner lease to ``owner``: it stops dispatching the run."""

    def __init__(self, run_id: str, owner: object, message: str) -> None:
        self.run_id = run_id
        self.owner = owner
        super().__init__(message)


class ClaimLostError(FlowError):
    """A claim this process held ran out and another process took it."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the claim on {key} expired and another process took it")


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


class SecretError(FlowError):
    """A secret a job needs cannot be had here; ``name`` is its variable or parameter.

    Either an environment variable a reference names is not set in the process that
    runs the job, or a parameter held a secret given in Python, which is never stored.
    The message names the variable or parameter, never a value.
    """

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message)


class FaultSpecError(FlowError):
    """A fault spec (``--fail STEP[@ATTEMPTS][:KIND]``) is malformed or names no job step."""

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"--fail {spec!r}: {reason}")
