"""What a `FakeQueue` records: jobs dispatched, and the chains and batches started.

Also how they read in an assertion's message: ``ImportRows(path='rows.csv')``, a
chain as ``chain[A(), B()]``, a secret as ``***`` (never its value).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from arvel_flow.durations import format_duration
from arvel_flow.queue.plan import BatchNode, ChainNode, FanOutNode, JobNode, Node
from arvel_flow.queue.redaction import stored_params
from arvel_flow.queue.targets import FunctionCall, JobRef, dump_params
from arvel_flow.secrets import MASK, is_redacted_marker


@dataclass(frozen=True, slots=True, repr=False)
class Dispatched:
    """One job handed to the queue: the instance, and when it was due.

    ``delay`` is 0 for a job dispatched to run now, else the seconds it was put off
    (by ``later`` or its ``delay`` setting).
    """

    job: Any
    delay: float
    queue_name: str

    @classmethod
    def of(cls, job: Any, delay: float | None = None) -> Dispatched:
        """The record of ``job`` dispatched after ``delay`` (None: its own ``delay``)."""
        ref = JobRef.of(job)
        instance = job if ref.instance is None else ref.instance
        due = ref.settings.delay if delay is None else delay
        return cls(instance, float(due or 0.0), ref.settings.queue_name)

    def __str__(self) -> str:
        later = f" after {format_duration(self.delay, exact=True)}" if self.delay else ""
        return format_job(self.job) + later

    def __repr__(self) -> str:
        # As messages show it (secrets masked), not the model's every field.
        return f"<Dispatched {self}>"


@dataclass(frozen=True, slots=True, repr=False)
class FlowRecord:
    """A chain or batch that was started, as a tree.

    Attributes:
        kind: ``"chain"`` or ``"batch"``.
        key: Its key in the plan (its ``id`` when it has one).
        steps: Its steps (a chain) or members (a batch) in order: job instances, and a
            `FlowRecord` for each nested chain or batch; a fan-out's members one by one.
        name: A batch's ``name``.
        allow_failures: A batch's allowance (False for a chain).
        concurrency: A batch's limit, if it has one.
        then, catch, finally_: The callbacks: a job instance, a `FlowRecord`, or None.
    """

    kind: Literal["chain", "batch"]
    key: str
    steps: tuple[Any, ...]
    name: str | None = None
    allow_failures: bool | int | str = False
    concurrency: int | None = None
    then: Any = None
    catch: Any = None
    finally_: Any = None

    @classmethod
    def of(cls, node: ChainNode | BatchNode) -> FlowRecord:
        """The record of a plan's chain or batch node."""
        if isinstance(node, ChainNode):
            return cls(
                "chain",
                node.key,
                tuple(item for step in node.steps for item in _steps(step)),
                catch=_callback(node.catch),
                finally_=_callback(node.finally_),
            )
        return cls(
            "batch",
            node.key,
            tuple(item for member in node.members for item in _steps(member)),
            name=node.name,
            allow_failures=node.allow_failures,
            concurrency=node.concurrency,
            then=_callback(node.then),
            catch=_callback(node.catch),
            finally_=_callback(node.finally_),
        )

    @property
    def jobs(self) -> tuple[Any, ...]:
        """Every job in it, nested flows' too, in order; callbacks aside."""
        return tuple(
            job
            for step in self.steps
            for job in (step.jobs if isinstance(step, FlowRecord) else (step,))
        )

    def flows(self) -> Iterator[FlowRecord]:
        """This flow and every chain or batch inside it (callbacks' too), outermost first."""
        yield self
        for item in (*self.steps, self.then, self.catch, self.finally_):
            if isinstance(item, FlowRecord):
                yield from item.flows()

    def __str__(self) -> str:
        label = self.kind if self.name is None else f"{self.kind} {self.name!r}"
        return f"{label}[{', '.join(format_step(step) for step in self.steps)}]"

    def __repr__(self) -> str:
        return f"<FlowRecord {self}>"


def job_instance(ref: JobRef) -> Any:
    """The job a ref stands for: the live instance, or one built without validation."""
    return ref.build_unresolved()


def _steps(node: Node | FanOutNode) -> tuple[Any, ...]:
    if isinstance(node, FanOutNode):
        return tuple(job_instance(node.member(i).job) for i in range(len(node.items)))
    if isinstance(node, JobNode):
        return (job_instance(node.job),)
    return (FlowRecord.of(node),)


def _callback(node: Node | None) -> Any:
    return None if node is None else _steps(node)[0]


def format_step(step: Any) -> str:
    """A job or a nested flow, as a message shows it."""
    return str(step) if isinstance(step, FlowRecord) else format_job(step)


def format_job(job: Any) -> str:
    """``Name(param=value, ...)``: a job's class and parameters, secrets masked."""
    if isinstance(job, FunctionCall):
        name, params = job.function.__qualname__, dict(job.kwargs)
    elif callable(job) and not hasattr(job, "handle"):
        return f"{job.__qualname__}()"
    else:
        name, params = type(job).__qualname__, dump_params(job)
    shown = stored_params(params, job)
    arguments = ", ".join(
        f"{key}={MASK if is_redacted_marker(value) else repr(value)}"
        for key, value in shown.items()
    )
    return f"{name}({arguments})"


def format_expected(expected: Any) -> str:
    """What an assertion looks for: a class by its name, an instance in full."""
    if isinstance(expected, type) or (callable(expected) and not hasattr(expected, "handle")):
        return str(expected.__qualname__)
    return format_job(expected)


def matches(job: Any, expected: Any) -> bool:
    """Whether ``job`` is what ``expected`` names: an instance of a class, a function,
    or an equal instance."""
    if isinstance(job, FunctionCall):
        job = job.function
    if isinstance(expected, type):
        return isinstance(job, expected)
    if callable(expected) and not hasattr(expected, "handle"):
        return job is expected
    return bool(job == expected)


def format_list(items: list[Any]) -> str:
    """One ``  - item`` line per item."""
    return "\n".join(f"  - {item}" for item in items)
