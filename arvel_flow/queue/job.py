"""The `Job` base model and the effective settings every runnable carries."""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from arvel_flow.pipeline.names import key_fields

if TYPE_CHECKING:
    from arvel_flow.queue.middleware import JobMiddleware

Backoff = float | tuple[float, ...] | Literal["exponential"]


class Job(BaseModel):
    """A unit of background work: subclass it and implement ``handle()``.

    Fields are the job's parameters; the settings below are class defaults that an
    instance, a pipeline's ``defaults``, a job template or a step may override.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    max_retries: int = 3
    backoff: int | float | list[int | float] | Literal["exponential"] = 60
    backoff_base: int | float = 2
    max_backoff: float | None = None
    jitter: bool = False
    timeout_seconds: float = 300
    queue_name: str = "default"
    max_exceptions: int | None = None
    retry_until: timedelta | None = None
    retry_on: tuple[type[BaseException] | str, ...] = ()
    dont_retry_on: tuple[type[BaseException] | str, ...] = ()
    unique_for: int | None = None
    unique_id: str | None = None
    unique_until_processing: bool = False

    async def handle(self) -> Any:
        """Do the work. Raising marks the attempt failed."""
        raise NotImplementedError(f"{type(self).__name__}.handle() is not implemented")

    async def on_failure(self, error: BaseException) -> None:
        """Called once when the job has failed permanently, with the last error raised."""

    def middleware(self) -> list[JobMiddleware]:
        """Middleware this job class always runs through (innermost in the stack)."""
        return []

    def get_unique_id(self) -> str:
        """The key that makes two dispatches of this job duplicates of each other."""
        if self.unique_id is not None:
            return format_key(self.unique_id, self)
        return type(self).__qualname__


class _FieldView(dict[str, Any]):
    """Lets ``str.format_map`` read an object's attributes: ``"import-{user_id}"``."""

    def __init__(self, source: object) -> None:
        super().__init__()
        self._source = source

    def __missing__(self, key: str) -> Any:
        try:
            return getattr(self._source, key)
        except AttributeError:
            raise KeyError(key) from None


def format_key(template: str, source: object) -> str:
    """Fill ``{field}`` placeholders of a lock or rate-limit key from a job's fields.

    Raises:
        ValueError: The template is malformed or reads something other than a field
            (see `key_fields`).
    """
    key_fields(template)
    return template.format_map(_FieldView(source))


@dataclass(frozen=True, slots=True)
class MiddlewareRef:
    """A middleware named by dotted path or builtin name, with its constructor arguments.

    Refs, not instances, travel in plans and messages: a worker builds the middleware
    fresh for every execution.
    """

    use: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JobSettings:
    """The effective settings of one job after defaults, templates and overrides merge.

    Durations are seconds. Exception classes are dotted paths or builtin names.
    """

    max_retries: int = 3
    backoff: Backoff = 60.0
    backoff_base: float = 2.0
    max_backoff: float | None = None
    jitter: bool = False
    timeout_seconds: float = 300.0
    queue_name: str = "default"
    max_exceptions: int | None = None
    retry_until: float | None = None
    retry_on: tuple[str, ...] = ()
    dont_retry_on: tuple[str, ...] = ()
    unique_for: float | None = None
    unique_id: str | None = None
    unique_until_processing: bool = False
    delay: float = 0.0
    middleware: tuple[MiddlewareRef, ...] = ()

    @classmethod
    def of(cls, source: object, **overrides: Any) -> JobSettings:
        """Settings read from a job instance or class (Job defaults where it has none)."""
        values: dict[str, Any] = {}
        if inspect.isclass(source) and issubclass(source, BaseModel):
            # Pydantic keeps field defaults in model_fields, not on the class.
            fields = source.model_fields
            values = {n: fields[n].default for n in JOB_SETTING_FIELDS if n in fields}
        else:
            for name in JOB_SETTING_FIELDS:
                if hasattr(source, name):
                    values[name] = getattr(source, name)
        values.update(overrides)
        return cls.from_values(values)

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> JobSettings:
        """Build from loosely typed values (a Job's fields, a YAML policy, JSON)."""
        known = {f.name for f in dataclasses.fields(cls)}
        clean = {k: _normalise(k, v) for k, v in values.items() if k in known}
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``from_values`` reads it back."""
        data = dataclasses.asdict(self)
        if isinstance(self.backoff, tuple):
            data["backoff"] = list(self.backoff)
        data["retry_on"] = list(self.retry_on)
        data["dont_retry_on"] = list(self.dont_retry_on)
        data["middleware"] = [{"use": m.use, "kwargs": m.kwargs} for m in self.middleware]
        return data

    def replace(self, **changes: Any) -> JobSettings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


JOB_SETTING_FIELDS: tuple[str, ...] = (
    "max_retries",
    "backoff",
    "backoff_base",
    "max_backoff",
    "jitter",
    "timeout_seconds",
    "queue_name",
    "max_exceptions",
    "retry_until",
    "retry_on",
    "dont_retry_on",
    "unique_for",
    "unique_id",
    "unique_until_processing",
)
"""Fields of `Job` that are settings rather than parameters of the work."""


def _normalise(name: str, value: Any) -> Any:
    if name == "backoff":
        if isinstance(value, list | tuple):
            return tuple(_float(v) for v in value)
        return value if value == "exponential" else _float(value)
    if name in ("retry_on", "dont_retry_on"):
        return tuple(_exception_name(v) for v in value)
    if name == "retry_until" and isinstance(value, timedelta):
        return value.total_seconds()
    if name == "middleware":
        return tuple(
            v if isinstance(v, MiddlewareRef) else MiddlewareRef(v["use"], dict(v["kwargs"]))
            for v in value
        )
    if name in ("backoff_base", "timeout_seconds", "delay") and value is not None:
        return _float(value)
    return value


def _float(value: Any) -> float:
    """``float(value)``, with infinity for an int too large to convert (``10 ** 400``)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _exception_name(value: type[BaseException] | str) -> str:
    if isinstance(value, str):
        return value
    if value.__module__ == "builtins":
        return value.__qualname__
    return f"{value.__module__}.{value.__qualname__}"


def is_job_class(obj: object) -> bool:
    """True for a subclass of arvel-flow's `Job`."""
    return inspect.isclass(obj) and issubclass(obj, Job)
