"""`QueueSettings`: where jobs go and where state lives, from ``ARVEL_FLOW_*`` variables.

Settings resolve, strongest first: command-line flags, ``ARVEL_FLOW_*`` environment
variables, the pipeline file's ``queue:`` section, then the defaults below.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    commit_interval: float = Field(
        0.05,
        ge=0,
        description="sqlite store: seconds of writes grouped into one commit (0: every write). "
        "A crash loses at most that much progress, whole; those jobs run again on resume.",
    )
    allowed_modules: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Module prefixes a worker may import job classes from (comma-separated)."
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
    outage_grace: float = Field(
        30.0,
        ge=0,
        description="Seconds run and workers retry a broker or store that is unreachable "
        "(or out of memory) before they give up (exit 3).",
    )
    max_deliveries: int = Field(
        5, ge=1, description="Deliveries of one message (its workers died) before it fails."
    )

    @field_validator("allowed_modules", "queues", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
