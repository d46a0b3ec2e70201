"""Retry policies and middleware, as the pipeline file defines them.

Split from `arvel_flow.pipeline.models` (which re-exports everything here) to keep each
module small; `SpecModel`, the base of every model of the file, lives here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, create_model

from arvel_flow.job_settings import RETRY_KEYS, SETTINGS
from arvel_flow.pipeline.fields import Duration

_Model = TypeVar("_Model", bound=BaseModel)


class SpecModel(BaseModel):
    """Base of every model of the file: strict, frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_by_name=False)


def with_settings(names: Iterable[str]) -> Callable[[type[_Model]], type[_Model]]:
    """Give a model one optional key per job setting named, as `JobSettings` declares it.

    Each key takes the setting's file type (bounds included) and its doc as the
    description; unset, it is ``None`` and keeps the value from the level below. The
    model returned is a subclass of the decorated one, under the same name, holding
    the generated fields after the ones the class declares.
    """
    fields: dict[str, Any] = {
        name: (SETTINGS[name].file_type | None, Field(None, description=SETTINGS[name].doc))
        for name in names
    }

    def derive(model: type[_Model]) -> type[_Model]:
        return create_model(
            model.__name__,
            __base__=model,
            __module__=model.__module__,
            __doc__=model.__doc__,
            **fields,
        )

    return derive


@with_settings(RETRY_KEYS)
class RetryPolicySpec(SpecModel):
    """How often and how patiently a job is retried; unset keys keep the value from below."""


class RateLimitedArgs(SpecModel):
    """Arguments of the builtin ``rate_limited`` middleware."""

    key: str = Field(
        min_length=1, description="Window key; '{field}' placeholders read the job's fields."
    )
    max_attempts: int = Field(ge=1, description="Runs allowed per window.")
    decay_seconds: Duration = Field(description="Length of the sliding window.")


class WithoutOverlappingArgs(SpecModel):
    """Arguments of the builtin ``without_overlapping`` middleware."""

    key: str = Field(
        min_length=1, description="Lock key; '{field}' placeholders read the job's fields."
    )
    release_after: Duration = Field(5.0, description="Wait before another copy tries again.")
    expire_after: Duration | None = Field(
        None,
        description="Lock expiry if its holder dies (default: the job's timeout plus a minute).",
    )


class UseMiddlewareSpec(SpecModel):
    """Any middleware class, by dotted path (or builtin name), with constructor arguments."""

    use: str = Field(min_length=1, description="A JobMiddleware subclass: 'pkg.module:Class'.")
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="Constructor arguments."
    )


class RateLimitedSpec(SpecModel):
    """``rate_limited: {key, max_attempts, decay_seconds}``."""

    rate_limited: RateLimitedArgs = Field(
        description="At most max_attempts runs per decay_seconds per key."
    )


class WithoutOverlappingSpec(SpecModel):
    """``without_overlapping: {key, release_after, expire_after}``."""

    without_overlapping: WithoutOverlappingArgs = Field(description="One run at a time per key.")


def _middleware_kind(value: Any) -> str | None:
    # Called with input data when validating and with models when serialising.
    if isinstance(value, str):
        return "<stack>"
    if isinstance(value, BaseModel):
        value = type(value).model_fields
    if isinstance(value, dict):
        for kind in ("use", "rate_limited", "without_overlapping"):
            if kind in value:
                return f"<{kind}>"
    return None


_MIDDLEWARE_ERROR = (
    "a middleware is {use: path, with: {...}}, {rate_limited: {...}} "
    "or {without_overlapping: {...}}"
)

InlineMiddleware = Annotated[
    Annotated[UseMiddlewareSpec, Tag("<use>")]
    | Annotated[RateLimitedSpec, Tag("<rate_limited>")]
    | Annotated[WithoutOverlappingSpec, Tag("<without_overlapping>")],
    Discriminator(
        _middleware_kind,
        custom_error_type="middleware_kind",
        custom_error_message=_MIDDLEWARE_ERROR,
    ),
]
"""One middleware, defined in place."""

MiddlewareItem = Annotated[
    Annotated[str, Tag("<stack>")]
    | Annotated[UseMiddlewareSpec, Tag("<use>")]
    | Annotated[RateLimitedSpec, Tag("<rate_limited>")]
    | Annotated[WithoutOverlappingSpec, Tag("<without_overlapping>")],
    Discriminator(
        _middleware_kind,
        custom_error_type="middleware_kind",
        custom_error_message="a middleware entry is a stack name, {use: path, with: {...}}, "
        "{rate_limited: {...}} or {without_overlapping: {...}}",
    ),
]
"""A middleware stack by name, or one middleware defined in place."""

RetryRef = Annotated[
    Annotated[str, Tag("<name>")] | Annotated[RetryPolicySpec, Tag("<inline>")],
    Discriminator(
        lambda value: (
            "<inline>"
            if isinstance(value, dict | RetryPolicySpec)
            else "<name>"
            if isinstance(value, str)
            else None
        ),
        custom_error_type="retry_kind",
        custom_error_message="retry is a policy name or a mapping such as {max_retries: 3}",
    ),
]
"""A retry policy by name, or one defined in place."""
