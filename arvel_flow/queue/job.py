"""The `Job` base model, and the settings every runnable carries (re-exported).

`JobSettings`, `MiddlewareRef` and `JOB_SETTING_FIELDS` are declared in
`arvel_flow.job_settings`, in the file-format layer (which derives its keys from
them, and may import no runtime module); they stay importable from here.
"""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from arvel_flow.job_settings import (
    DEFAULTS,
    JOB_SETTING_FIELDS,
    SETTINGS,
    Backoff,
    JobSettings,
    MiddlewareRef,
)
from arvel_flow.pipeline.names import key_fields

if TYPE_CHECKING:
    from arvel_flow.queue.middleware import JobMiddleware

__all__ = [
    "JOB_SETTING_FIELDS",
    "Backoff",
    "Job",
    "JobSettings",
    "MiddlewareRef",
    "format_key",
    "is_job_class",
]


def _setting_field(name: str) -> Any:
    """A `Job` field for the setting ``name``: its default and doc from `JobSettings`."""
    setting = SETTINGS[name]
    return Field(setting.to_job(getattr(DEFAULTS, name)), description=setting.doc)


class Job(BaseModel):
    """A unit of background work: subclass it and implement ``handle()``.

    Fields are the job's parameters; the settings below are class defaults that an
    instance, a pipeline's ``defaults``, a job template or a step may override.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    # Names, defaults and docs come from `JobSettings`; the types are those a job
    # class writes (a `timedelta`, exception classes), which `JobSettings.of` normalises.
    max_retries: int = _setting_field("max_retries")
    backoff: int | float | list[int | float] | Literal["exponential"] = _setting_field("backoff")
    backoff_base: int | float = _setting_field("backoff_base")
    max_backoff: float | None = _setting_field("max_backoff")
    jitter: bool = _setting_field("jitter")
    queue_name: str = _setting_field("queue_name")
    timeout_seconds: float = _setting_field("timeout_seconds")
    retry_until: timedelta | None = _setting_field("retry_until")
    max_exceptions: int | None = _setting_field("max_exceptions")
    retry_on: tuple[type[BaseException] | str, ...] = _setting_field("retry_on")
    dont_retry_on: tuple[type[BaseException] | str, ...] = _setting_field("dont_retry_on")
    unique_for: int | float | None = _setting_field("unique_for")
    unique_id: str | None = _setting_field("unique_id")
    unique_until_processing: bool = _setting_field("unique_until_processing")

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


def is_job_class(obj: object) -> bool:
    """True for a subclass of arvel-flow's `Job`."""
    return inspect.isclass(obj) and issubclass(obj, Job)
