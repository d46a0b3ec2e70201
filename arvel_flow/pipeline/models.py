"""The pipeline file as Pydantic models: every key of SPEC §3, and nothing else.

Every model forbids unknown keys and validates strictly (``"3"`` is not an integer:
YAML already typed it), and every field has a description, which becomes the hover
text of the JSON Schema in editors. Unions are tagged with callable discriminators,
so a wrong step reports one error, not one per kind of step. Tags are written
``<like-this>``; `arvel_flow.pipeline.diagnostics` removes them from error locations.
Retry policies and middleware live in `arvel_flow.pipeline.policies`, field types (and
the parsing of durations) in `arvel_flow.pipeline.fields`; all are re-exported here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from arvel_flow.job_settings import STEP_KEYS
from arvel_flow.pipeline.fields import (
    ENV_NAME_PATTERN,
    MAX_CONCURRENCY,
    NAME_PATTERN,
    REF_NAME_PATTERN,
    STEP_ID_PATTERN,
    VAR_NAME_PATTERN,
    Allowance,
    PositiveDuration,
    Version,
)
from arvel_flow.pipeline.names import parse_prefixes
from arvel_flow.pipeline.policies import (
    InlineMiddleware,
    MiddlewareItem,
    RateLimitedArgs,
    RateLimitedSpec,
    RetryPolicySpec,
    RetryRef,
    SpecModel,
    UseMiddlewareSpec,
    WithoutOverlappingArgs,
    WithoutOverlappingSpec,
    with_settings,
)
from arvel_flow.pipeline.schedule import TriggerSpec

__all__ = [
    "BatchStepSpec",
    "ChainStepSpec",
    "DefaultsSpec",
    "InlineMiddleware",
    "JobSettingsSpec",
    "JobStepSpec",
    "JobTemplateSpec",
    "MiddlewareItem",
    "PipelineSpec",
    "QueueSpec",
    "RateLimitedArgs",
    "RateLimitedSpec",
    "RetryPolicySpec",
    "RetryRef",
    "SpecModel",
    "StepSpec",
    "TriggerSpec",
    "UseMiddlewareSpec",
    "WithoutOverlappingArgs",
    "WithoutOverlappingSpec",
]

RefName = Annotated[str, StringConstraints(pattern=REF_NAME_PATTERN)]
VarName = Annotated[str, StringConstraints(pattern=VAR_NAME_PATTERN)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)]


@with_settings(STEP_KEYS)
class JobSettingsSpec(SpecModel):
    """Job settings that ``defaults``, templates and steps may set."""

    retry: RetryRef | None = Field(
        None, description="A policy under retry_policies, or one defined in place."
    )
    middleware: list[MiddlewareItem] | None = Field(
        None,
        description="Stacks by name or middleware in place, outermost first; added after the "
        "middleware of the levels below.",
    )


class DefaultsSpec(JobSettingsSpec):
    """Settings of every job step, unless its template or the step overrides them."""


class JobTemplateSpec(JobSettingsSpec):
    """A named job: a class with default parameters and settings, used as ``job: name``."""

    class_: str = Field(
        alias="class", min_length=1, description="The job: 'pkg.module:Class' or a function."
    )
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="Default parameters."
    )


Id = Annotated[str, StringConstraints(pattern=STEP_ID_PATTERN)]


def _item_as_parsed(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # Validating would copy every item of a 100,000-item ``each`` (~200 bytes each) while
    # the parsed one is still held: an item that is a dict with text keys is kept as is.
    if type(value) is dict and all(type(key) is str for key in value):
        return value
    return handler(value)


EachItem = Annotated[dict[str, Any], WrapValidator(_item_as_parsed)]
"""One ``each`` item: a mapping of parameter names to values, not copied."""


def _axis_as_parsed(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # Likewise a 1,000,000-value ``matrix`` axis: a non-empty list is kept as parsed.
    return value if type(value) is list and value else handler(value)


MatrixAxis = Annotated[list[Any], Field(min_length=1), WrapValidator(_axis_as_parsed)]
"""One ``matrix`` axis: its values, at least one, not copied."""


class JobStepSpec(JobSettingsSpec):
    """Runs one job, or one per item with ``each`` / ``matrix``."""

    model_config = ConfigDict(json_schema_extra={"not": {"required": ["each", "matrix"]}})

    id: Id | None = Field(None, description="Unique step id (letters, digits, _ and -).")
    job: str = Field(
        min_length=1, description="A template under jobs, or a dotted path 'pkg.module:Class'."
    )
    with_: dict[str, Any] = Field(
        default_factory=dict, alias="with", description="The job's parameters."
    )
    each: list[EachItem] | None = Field(
        None, min_length=1, description="Run once per item; each item adds to the parameters."
    )
    matrix: dict[str, MatrixAxis] | None = Field(
        None, min_length=1, description="Run once per combination of these parameter values."
    )

    @model_validator(mode="after")
    def _one_fan_out(self) -> JobStepSpec:
        if self.each is not None and self.matrix is not None:
            raise PydanticCustomError("fan_out", "a job step takes 'each' or 'matrix', not both")
        return self


class ChainStepSpec(SpecModel):
    """Steps in order, each after the previous one succeeded."""

    id: Id | None = Field(None, description="Unique step id (letters, digits, _ and -).")
    chain: list[StepSpec] = Field(min_length=1, description="The steps, in order.")
    catch: StepSpec | None = Field(None, description="Runs once if a step fails permanently.")
    finally_: StepSpec | None = Field(
        None, alias="finally", description="Runs once at the end, either way."
    )


class BatchStepSpec(SpecModel):
    """Members that run concurrently."""

    id: Id | None = Field(None, description="Unique step id (letters, digits, _ and -).")
    batch: list[StepSpec] = Field(
        min_length=1, description="The members; a fan-out adds one per item."
    )
    name: str | None = Field(None, description="A label for progress output.")
    allow_failures: Allowance = Field(
        False,
        description="Members that may fail: false, true (any), a count, or a share such as '10%'.",
    )
    concurrency: int | None = Field(
        None, ge=1, le=MAX_CONCURRENCY, description="Members running at once (default: no limit)."
    )
    then: StepSpec | None = Field(
        None, description="Runs once when every member finished, if the batch succeeded."
    )
    catch: StepSpec | None = Field(
        None, description="Runs once at the first failure beyond allow_failures."
    )
    finally_: StepSpec | None = Field(
        None, alias="finally", description="Runs once at the end, either way."
    )


def _step_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):  # serialising: a model, not input data
        value = type(value).model_fields
    if isinstance(value, dict):
        for kind in ("job", "chain", "batch"):
            if kind in value:
                return f"<{kind}>"
    return None


StepSpec = Annotated[
    Annotated[JobStepSpec, Tag("<job>")]
    | Annotated[ChainStepSpec, Tag("<chain>")]
    | Annotated[BatchStepSpec, Tag("<batch>")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step is a mapping with one of 'job', 'chain' or 'batch'",
    ),
]
"""A step: exactly one of ``job``, ``chain`` or ``batch``."""


class QueueSpec(SpecModel):
    """Where jobs go; command-line flags and ARVEL_FLOW_* variables override these."""

    driver: Literal["sync", "null", "taskiq"] | None = Field(
        None, description="sync (inline), null (dry run) or taskiq."
    )
    broker: Literal["memory", "redis", "nats", "rabbitmq"] | None = Field(
        None, description="The Taskiq broker."
    )
    url: str | None = Field(None, description="The broker's URL, for redis, nats and rabbitmq.")
    store: str | None = Field(
        None, description="Run state and failed jobs: memory, sqlite:PATH or redis://..."
    )
    concurrency: int | None = Field(
        None, ge=1, le=MAX_CONCURRENCY, description="Jobs run at once by this process."
    )
    allowed_modules: list[str] | None = Field(
        None, description="Module prefixes workers may import jobs from."
    )
    redelivery_timeout: PositiveDuration | None = Field(
        None, description="When the broker redelivers an unacknowledged job."
    )

    @field_validator("allowed_modules")
    @classmethod
    def _normalise_prefixes(cls, value: list[str] | None) -> list[str] | None:
        """A trailing ``.`` or ``:`` is dropped; an empty or malformed prefix is an error."""
        if value is None:
            return None
        try:
            return list(parse_prefixes(value))
        except ValueError as error:
            raise PydanticCustomError("module_prefix", "{reason}", {"reason": str(error)}) from None


class PipelineSpec(SpecModel):
    """A pipeline file: jobs, chains, batches, retry policies and middleware stacks."""

    version: Version = Field(description="Format version; always 1.")
    name: str = Field(
        pattern=NAME_PATTERN, description="The pipeline's name: lowercase, digits, _ . -"
    )
    description: str | None = Field(None, description="What the pipeline does.")
    vars: dict[VarName, Any] = Field(
        default_factory=dict,
        description="Values for ``${vars.name}``; ``--set name=value`` overrides them.",
    )
    secrets: list[EnvName] = Field(
        default_factory=list,
        description="Environment variables whose values are secret (besides those named like "
        "*PASSWORD*, *SECRET*, *TOKEN*, *KEY*, *CREDENTIAL*, *DSN*, *AUTH*): ``${NAME}`` of "
        "one stays a reference, resolved only by the process that runs the job, never stored.",
    )
    queue: QueueSpec = Field(default_factory=QueueSpec, description="Queue and store defaults.")
    observers: list[str] = Field(
        default_factory=list,
        description="Dotted paths of functions or classes that receive every event of a run "
        "(``arvel-flow run``); ARVEL_FLOW_OBSERVERS replaces them.",
    )
    defaults: DefaultsSpec = Field(
        default_factory=DefaultsSpec, description="Settings of every job step."
    )
    retry_policies: dict[RefName, RetryPolicySpec] = Field(
        default_factory=dict, description="Named retry policies."
    )
    middleware_stacks: dict[RefName, list[InlineMiddleware]] = Field(
        default_factory=dict, description="Named lists of middleware, outermost first."
    )
    jobs: dict[RefName, JobTemplateSpec] = Field(
        default_factory=dict, description="Named job templates."
    )
    schedule: list[TriggerSpec] = Field(
        default_factory=list,
        description="When runs start on their own (arvel-flow scheduler): cron or interval "
        "triggers.",
    )
    pipeline: StepSpec = Field(description="The root step.")


ChainStepSpec.model_rebuild()
BatchStepSpec.model_rebuild()
PipelineSpec.model_rebuild()
