"""`QueueSettings`: where jobs go and where state lives, from ``ARVEL_FLOW_*`` variables.

Settings resolve, strongest first: command-line flags, ``ARVEL_FLOW_*`` environment
variables, the pipeline file's ``queue:`` section, then the defaults below. That order
is decided here only, by `QueueSettings.resolve`. A resume reads no file: the settings
its run was started with stand where the file's section does (`arvel_flow.launch.pinned`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.pipeline.names import parse_prefixes

DriverName = Literal["sync", "null", "taskiq"]
BrokerName = Literal["memory", "redis", "nats", "rabbitmq"]


class QueueSettings(BaseSettings):
    """How arvel-flow dispatches and runs jobs."""

    model_config = SettingsConfigDict(env_prefix="ARVEL_FLOW_", extra="forbid")

    driver: DriverName = Field("taskiq", description="sync (inline), null (dry run) or taskiq.")
    broker: BrokerName = Field(
        "memory", description="The Taskiq broker: memory (in-process) or a server."
    )
    url: str | None = Field(None, description="The broker's URL, for redis, nats and rabbitmq.")
    store: str = Field(
        "sqlite:.arvel-flow/state.db",
        description="Run state, failed jobs, locks: memory, sqlite:PATH or redis://...",
    )
    concurrency: int = Field(16, ge=1, description="Jobs run at once by this process.")
    processes: int | None = Field(
        None,
        ge=1,
        description="Worker processes `arvel-flow worker` runs, each with its own "
        "concurrency (default: the number of CPUs).",
    )
    commit_interval: float = Field(
        0.05,
        ge=0,
        description="sqlite store: seconds of writes grouped into one commit (0: every write). "
        "A crash loses at most that much progress, whole; those jobs run again on resume.",
    )
    allowed_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Module prefixes a worker may import job classes from (comma-separated)."
    )
    observers: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Dotted paths of observers that receive every event (comma-separated).",
    )
    redelivery_timeout: float = Field(
        600.0, gt=0, description="Seconds before a broker redelivers an unacknowledged job."
    )
    prefix: str = Field(
        "arvel-flow:",
        min_length=1,
        description="Put before every Redis key (store and broker), to share one database.",
    )
    queues: Annotated[tuple[str, ...], NoDecode] = Field(
        ("default",), min_length=1, description="Queues a worker reads (comma-separated)."
    )
    heartbeat_seconds: float = Field(
        1.0, gt=0, description="How often a worker tells Redis it is alive."
    )
    heartbeat_timeout: float = Field(
        10.0, gt=0, description="Seconds of silence after which a worker counts as dead."
    )
    owner_lease: float = Field(
        15.0,
        gt=0,
        description="Seconds a run's owner lease lasts unless its process renews it "
        "(every third of that): how soon a run whose process died can be resumed.",
    )
    outage_grace: float = Field(
        30.0,
        ge=0,
        description="Seconds run and workers retry a broker or store that is unreachable "
        "(or out of memory) before they give up (exit 3).",
    )
    max_deliveries: int = Field(
        5, ge=1, description="Deliveries of one message (its workers died) before it fails."
    )

    @classmethod
    def resolve(
        cls, file: Mapping[str, Any] | None = None, flags: Mapping[str, Any] | None = None
    ) -> QueueSettings:
        """The settings in force, strongest first: ``flags``, ``ARVEL_FLOW_*``, ``file``, defaults.

        Args:
            file: A pipeline file's ``queue:`` section (``None`` values count as unset).
            flags: What the caller chose (command-line flags, say; ``None`` is unset).

        Raises:
            ConfigError: A value is invalid: one issue per setting, its message alone.

        Example:
            >>> QueueSettings.resolve({"concurrency": 4}, {"store": "memory"}).concurrency
            4
        """
        from_env = load_queue_settings()
        values = {name: value for name, value in (file or {}).items() if value is not None}
        values.update({name: getattr(from_env, name) for name in from_env.model_fields_set})
        values.update({name: value for name, value in (flags or {}).items() if value is not None})
        return load_queue_settings(**values)

    @field_validator("queues", "observers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_modules", mode="before")
    @classmethod
    def _parse_prefixes(cls, value: object) -> object:
        """Comma-separated or a list; each prefix normalised, an empty or malformed one refused.

        An empty (or blank) variable means no prefix at all, which a worker refuses.
        """
        if isinstance(value, str):
            value = value.split(",") if value.strip() else ()
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return parse_prefixes(value)
        return value


def load_queue_settings(**values: Any) -> QueueSettings:
    """`QueueSettings` from ``values`` over ``ARVEL_FLOW_*`` variables and the defaults.

    Raises:
        ConfigError: A value is invalid: one issue per setting, its message alone.
    """
    try:
        return QueueSettings(**values)
    except ValidationError as error:
        issues = [
            ConfigIssue(
                str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"],
                path=".".join(str(part) for part in item["loc"][:1]),
            )
            for item in error.errors()
        ]
        raise ConfigError(issues) from None
