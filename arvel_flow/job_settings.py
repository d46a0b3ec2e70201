"""`JobSettings`: the one declaration of the settings every job carries.

Each field of `JobSettings` declares one setting once: its name, its default, its
type in plans and messages, and, in the field's `Setting`, its documentation, how the
pipeline file writes it (type and bounds) and where (a retry policy, a step), whether
it is a field of `Job`, and how a loosely typed value becomes the declared type. The
other forms are derived from it: the fields of `Job` (`arvel_flow.queue.job`), the
keys of retry policies and steps (`arvel_flow.pipeline.policies`,
`arvel_flow.pipeline.models`), `JOB_SETTING_FIELDS`. `tests/unit/test_job_settings.py`
checks that they agree.

A job class declares its settings as fields, class attributes (``ClassVar``) or the
names of other job libraries (`FOREIGN_NAMES`: Arvel's and Laravel's ``tries``,
``timeout``, ...); `read_settings` reads them all and names what it cannot honour.

It sits in the file-format layer (it reads the field types of
`arvel_flow.pipeline.fields`) and imports no runtime module, so the file format can
derive its models from it; `arvel_flow.queue.job` re-exports it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError

from arvel_flow.pipeline.fields import (
    MAX_BACKOFF_BASE,
    MAX_RETRIES,
    Duration,
    PositiveDuration,
)
from arvel_flow.pipeline.fields import Backoff as FileBackoff

Backoff = float | tuple[float, ...] | Literal["exponential"]
"""Seconds between attempts: the same every time, one per attempt, or exponential."""

ExceptionNames = list[Annotated[str, StringConstraints(min_length=1)]]
"""Exception classes as the file names them: builtin names or dotted paths."""

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


@dataclass(frozen=True, slots=True)
class MiddlewareRef:
    """A middleware named by dotted path or builtin name, with its constructor arguments.

    Refs, not instances, travel in plans and messages: a worker builds the middleware
    fresh for every execution.
    """

    use: str
    kwargs: dict[str, Any] = field(default_factory=dict)


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Setting:
    """How one job setting is documented, written in the file, and normalised.

    ``file_type`` is the type of its key in the pipeline file (bounds included);
    ``None`` where the file has no key of that name for it. ``in_retry`` / ``on_step``
    say whether retry policies / ``defaults``, templates and steps have the key.
    ``normalise`` turns a loose value (a `Job` field, YAML, JSON) into the declared
    type; ``to_job`` turns it back into the type of the `Job` field.
    """

    doc: str
    file_type: Any = None
    in_retry: bool = False
    on_step: bool = False
    on_job: bool = True
    normalise: Callable[[Any], Any] = _identity
    to_job: Callable[[Any], Any] = _identity


def _float(value: Any) -> float:
    """``float(value)``, with infinity for an int too large to convert (``10 ** 400``)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _float_or_none(value: Any) -> Any:
    return None if value is None else _float(value)


def _backoff(value: Any) -> Backoff:
    if isinstance(value, list | tuple):
        return tuple(_float(v) for v in value)
    return "exponential" if value == "exponential" else _float(value)


def _backoff_field(value: Backoff) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _timedelta(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _exception_name(value: type[BaseException] | str) -> str:
    if isinstance(value, str):
        return value
    if value.__module__ == "builtins":
        return value.__qualname__
    return f"{value.__module__}.{value.__qualname__}"


def _exception_names(value: Any) -> tuple[str, ...]:
    return tuple(_exception_name(v) for v in value)


def _middleware_refs(value: Any) -> tuple[MiddlewareRef, ...]:
    return tuple(
        v if isinstance(v, MiddlewareRef) else MiddlewareRef(v["use"], dict(v["kwargs"]))
        for v in value
    )


def _about(doc: str, file_type: Any = None, **how: Any) -> dict[str, Setting]:
    """The metadata of one `JobSettings` field: its `Setting`."""
    return {"setting": Setting(doc, file_type, **how)}


@dataclass(frozen=True, slots=True)
class JobSettings:
    """The effective settings of one job after defaults, templates and overrides merge.

    Durations are seconds. Exception classes are dotted paths or builtin names.
    """

    max_retries: int = field(
        default=3,
        metadata=_about(
            "Retries after the first attempt.",
            Annotated[int, Field(ge=0, le=MAX_RETRIES)],
            in_retry=True,
        ),
    )
    backoff: Backoff = field(
        default=60.0,
        metadata=_about(
            "Wait between attempts: seconds, a list (one per attempt, the last repeating) "
            "or 'exponential'.",
            FileBackoff,
            in_retry=True,
            normalise=_backoff,
            to_job=_backoff_field,
        ),
    )
    backoff_base: float = field(
        default=2.0,
        metadata=_about(
            "Base of exponential backoff: base ** attempt.",
            Annotated[float, Field(ge=1, le=MAX_BACKOFF_BASE)],
            in_retry=True,
            normalise=_float_or_none,
        ),
    )
    max_backoff: float | None = field(
        default=None, metadata=_about("Cap on any single wait.", Duration, in_retry=True)
    )
    jitter: bool = field(
        default=False,
        metadata=_about("Spread each wait over [wait/2, wait].", bool, in_retry=True),
    )
    queue_name: str = field(
        default="default",
        metadata=_about("Queue the job is sent to.", NonEmpty, on_step=True),
    )
    timeout_seconds: float = field(
        default=300.0,
        metadata=_about(
            "Time limit of one attempt; 0 = none.",
            Duration,
            in_retry=True,
            on_step=True,
            normalise=_float_or_none,
        ),
    )
    retry_until: float | None = field(
        default=None,
        metadata=_about(
            "Stop retrying this long after the first attempt.",
            Duration,
            in_retry=True,
            normalise=_seconds,
            to_job=_timedelta,
        ),
    )
    max_exceptions: int | None = field(
        default=None,
        metadata=_about(
            "Stop after this many raised exceptions.", Annotated[int, Field(ge=1)], in_retry=True
        ),
    )
    retry_on: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            "Retry only these exceptions (builtin names or dotted paths).",
            ExceptionNames,
            in_retry=True,
            normalise=_exception_names,
        ),
    )
    dont_retry_on: tuple[str, ...] = field(
        default=(),
        metadata=_about(
            "Never retry these exceptions (builtin names or dotted paths).",
            ExceptionNames,
            in_retry=True,
            normalise=_exception_names,
        ),
    )
    unique_for: float | None = field(
        default=None,
        metadata=_about(
            "Refuse duplicate dispatches for this long.", PositiveDuration, on_step=True
        ),
    )
    unique_id: str | None = field(
        default=None,
        metadata=_about(
            "What makes two dispatches duplicates; '{field}' reads job fields.",
            NonEmpty,
            on_step=True,
        ),
    )
    unique_until_processing: bool = field(
        default=False,
        metadata=_about(
            "Release the unique lock when the job starts rather than when it ends.",
            bool,
            on_step=True,
        ),
    )
    delay: float = field(
        default=0.0,
        metadata=_about(
            "Wait before the first attempt.",
            Duration,
            on_step=True,
            on_job=False,
            normalise=_float_or_none,
        ),
    )
    # The file names middleware stacks or defines middleware in place: `JobSettingsSpec`
    # declares that key itself, and the compiler expands it into refs.
    middleware: tuple[MiddlewareRef, ...] = field(
        default=(),
        metadata=_about(
            "Middleware, outermost first, besides the job class's own.",
            on_job=False,
            normalise=_middleware_refs,
        ),
    )

    @classmethod
    def of(cls, source: object, **overrides: Any) -> JobSettings:
        """Settings read from a job instance or class (Job defaults where it has none).

        Besides Pydantic fields, class attributes (``ClassVar`` included) and the names
        other job libraries use (`FOREIGN_NAMES`) are read; a value that cannot be
        honoured is left out (`setting_problems` names it).
        """
        values, _ = read_settings(source)
        values.update(overrides)
        return cls.from_values(values)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> JobSettings:
        """Build from loosely typed values (a Job's fields, a YAML policy, JSON)."""
        clean = {k: SETTINGS[k].normalise(v) for k, v in values.items() if k in SETTINGS}
        return cls(**clean)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``from_values`` reads it back."""
        # asdict turns each MiddlewareRef into {"use", "kwargs"}; JSON has lists.
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def replace(self, **changes: Any) -> JobSettings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


SETTINGS: Mapping[str, Setting] = {
    f.name: f.metadata["setting"] for f in dataclasses.fields(JobSettings)
}
"""Every job setting by name, in declaration order."""

DEFAULTS = JobSettings()
"""The settings of a job that sets none: `Job`'s defaults."""

JOB_SETTING_FIELDS: tuple[str, ...] = tuple(n for n, s in SETTINGS.items() if s.on_job)
"""Fields of `Job` that are settings rather than parameters of the work."""

RETRY_KEYS: tuple[str, ...] = tuple(n for n, s in SETTINGS.items() if s.in_retry)
"""Keys of a retry policy in the pipeline file."""

STEP_KEYS: tuple[str, ...] = tuple(n for n, s in SETTINGS.items() if s.on_step)
"""Settings that ``defaults``, job templates and steps set directly (besides ``retry``
and ``middleware``)."""


def _tries(value: Any) -> Any:
    """Arvel's and Laravel's ``tries`` counts every attempt: retries are one fewer."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(
                f"must be at least 1 (Laravel's 0 = 'retry forever' is not supported), "
                f"not {value!r}"
            )
        return value - 1
    raise ValueError(f"must be a whole number of attempts, not {value!r}")


@dataclass(frozen=True, slots=True)
class ForeignName:
    """A setting as another job library names it on a job class."""

    setting: str
    convert: Callable[[Any], Any] = _identity


FOREIGN_NAMES: Mapping[str, ForeignName] = {
    "tries": ForeignName("max_retries", _tries),
    "timeout": ForeignName("timeout_seconds"),
    "queue": ForeignName("queue_name"),
    "maxExceptions": ForeignName("max_exceptions"),
}
"""Arvel's ``arvel.queue.Job`` and Laravel's names, read from class attributes only (a
Pydantic field of that name is a parameter of the job): ``tries`` is attempts in all,
so ``max_retries = tries - 1``; ``timeout`` is seconds; ``queue`` the queue's name."""

UNSUPPORTED_NAMES: Mapping[str, str] = {
    "retryUntil": "set 'retry_until' (seconds or a timedelta) instead",
    "failOnTimeout": "a timeout is always a failed attempt (JobTimeoutError)",
    "fail_on_timeout": "a timeout is always a failed attempt (JobTimeoutError)",
    "deleteWhenMissingModels": "arvel-flow has no model bindings to go missing",
    "delete_when_missing_models": "arvel-flow has no model bindings to go missing",
    "afterCommit": "jobs are dispatched when the run starts, not after a transaction",
    "after_commit": "jobs are dispatched when the run starts, not after a transaction",
    "delay": "set 'delay' on the step or its template instead",
}
"""Settings other job libraries read from a job class that arvel-flow does not honour,
with what to do instead; `setting_problems` reports them."""

_ABSENT = object()


def read_settings(source: object) -> tuple[dict[str, Any], list[str]]:
    """The settings a job class or instance declares, and those it declares but cannot have.

    Each value is normalised; a class attribute's is also checked against the setting's
    type as the file writes it (a Pydantic field's is taken as given, its model types
    it). One that fails is left out and described in the second list, as is a name of
    `UNSUPPORTED_NAMES`.
    """
    if not inspect.isclass(source) and not isinstance(source, BaseModel):
        source = type(source)  # a plain job's attributes are its parameters
    values: dict[str, Any] = {}
    problems: list[str] = []
    fields = _fields(source)
    for name in JOB_SETTING_FIELDS:
        raw = _declared(source, name, fields_too=True)
        _take(values, problems, name, name, raw, check=name not in fields)
    for name, foreign in FOREIGN_NAMES.items():
        raw = _declared(source, name, fields_too=False)
        own = values.get(foreign.setting, _ABSENT)
        if raw is _ABSENT:
            continue
        if own is not _ABSENT and own != getattr(DEFAULTS, foreign.setting):
            problems.append(
                f"both {name!r} and {foreign.setting!r} are set: {foreign.setting!r} wins"
            )
            continue
        try:
            converted = foreign.convert(_plain_value(name, raw))
        except ValueError as error:
            problems.append(f"{name!r} {error}")
            continue
        _take(values, problems, foreign.setting, name, converted, check=True)
    for name, instead in UNSUPPORTED_NAMES.items():
        if _declared(source, name, fields_too=False) is not _ABSENT:
            problems.append(f"{name!r} is not a setting arvel-flow honours: {instead}")
    return values, problems


_RETRY_CHOICES = frozenset(
    {"max_retries", "backoff", "backoff_base", "max_backoff", "retry_until", "max_exceptions"}
    | {"tries", "maxExceptions"}  # Arvel's and Laravel's (`FOREIGN_NAMES`)
)
"""Names by which a job class chooses how often and how long apart it retries."""


def declares_retries(cls: type) -> bool:
    """Whether a job class (or a base of its own) chooses its retries: declares
    ``max_retries``, ``backoff``, Arvel's ``tries`` and the like, as a field or a
    class attribute. arvel-flow's own `Job` declares the defaults, which do not count."""
    for klass in cls.__mro__:
        if klass.__module__.startswith(("arvel_flow.", "pydantic.", "builtins")):
            continue
        if _RETRY_CHOICES & (set(vars(klass)) | set(inspect.get_annotations(klass))):
            return True
    return False


def setting_problems(source: object) -> list[str]:
    """What a job class declares as settings that arvel-flow cannot honour, one line each."""
    return read_settings(source)[1]


def _declared(source: object, name: str, *, fields_too: bool) -> Any:
    """The value ``source`` declares for ``name``, or `_ABSENT`.

    A Pydantic field counts with ``fields_too`` only: the class holds its default in
    ``model_fields``, not as an attribute.
    """
    cls = source if inspect.isclass(source) else type(source)
    if issubclass(cls, BaseModel) and name in cls.model_fields:
        if not fields_too:
            return _ABSENT
        if source is not cls:
            return getattr(source, name)
        info = cls.model_fields[name]
        return _ABSENT if info.is_required() else info.get_default(call_default_factory=True)
    return getattr(source, name, _ABSENT)


def _fields(source: object) -> Mapping[str, Any]:
    """The Pydantic fields of ``source``'s class: their values are typed by the model."""
    cls = source if inspect.isclass(source) else type(source)
    return cls.model_fields if issubclass(cls, BaseModel) else {}


def _plain_value(name: str, value: Any) -> Any:
    if inspect.isroutine(value) or isinstance(value, property):
        raise ValueError(
            "is a method or property: settings are read from class attributes, never "
            "called (write it as a value)"
        )
    return value


def _take(
    values: dict[str, Any],
    problems: list[str],
    setting: str,
    name: str,
    raw: Any,
    *,
    check: bool,
) -> None:
    """Put ``raw`` in ``values`` under ``setting``; with ``check``, only if it fits the
    setting's type as the pipeline file writes it (a field's value is taken as given,
    as from the Python API)."""
    if raw is _ABSENT:
        return
    try:
        value = SETTINGS[setting].normalise(_plain_value(name, raw))
        if check and (value is not None or getattr(DEFAULTS, setting) is not None):
            _check_type(setting, value)
    except (ValueError, TypeError, ValidationError, KeyError) as error:
        problems.append(f"{name!r} {_reason(error)}")
        return
    values[setting] = value


@functools.cache
def _adapter(setting: str) -> TypeAdapter[Any] | None:
    file_type = SETTINGS[setting].file_type
    return None if file_type is None else TypeAdapter(file_type)


def _check_type(setting: str, value: Any) -> None:
    adapter = _adapter(setting)
    if adapter is not None:
        adapter.validate_python(list(value) if isinstance(value, tuple) else value)


def _reason(error: BaseException) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"is not a valid setting value: {first['msg']} (got {first['input']!r})"
    message = str(error)
    if message.startswith(("must", "is ")):
        return message
    return f"is not a valid setting value: {message}"
