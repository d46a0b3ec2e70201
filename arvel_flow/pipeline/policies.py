"""Retry policies and middleware, as the pipeline file defines them.

Split from `arvel_flow.pipeline.models` (which re-exports everything here) to keep each
module small; `SpecModel`, the base of every model of the file, lives here too.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from arvel_flow.pipeline.fields import MAX_BACKOFF_BASE, MAX_RETRIES, Backoff, Duration

ExceptionNames = list[Annotated[str, StringConstraints(min_length=1)]]


class SpecModel(BaseModel):
    """Base of every model of the file: strict, frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, validate_by_name=False)


class RetryPolicySpec(SpecModel):
    """How often and how patiently a job is retried; unset keys keep the value from below."""

    max_retries: int | None = Field(
        None, ge=0, le=MAX_RETRIES, description="Retries after the first attempt."
    )
    backoff: Backoff | None = Field(
        None,
        description="Wait between attempts: seconds, a list (one per attempt, the last repeating) "
        "or 'exponential'.",
    )
    backoff_base: float | None = Field(
        None,
        ge=1,
        le=MAX_BACKOFF_BASE,
        description="Base of exponential backoff: base ** attempt.",
    )
    max_backoff: Duration | None = Field(None, description="Cap on any single wait.")
    jitter: bool | None = Field(None, description="Spread each wait over [wait/2, wait].")
    timeout_seconds: Duration | None = Field(
        None, description="Time limit of one attempt; 0 = none."
    )
    retry_until: Duration | None = Field(
        None, description="Stop retrying this long after the first attempt."
    )
    max_exceptions: int | None = Field(
        None, ge=1, description="Stop after this many raised exceptions."
    )
    retry_on: ExceptionNames | None = Field(
        None, description="Retry only these exceptions (builtin names or dotted paths)."
    )
    dont_retry_on: ExceptionNames | None = Field(
        None, description="Never retry these exceptions (builtin names or dotted paths)."
    )


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
