"""`WorkerOptions`: how a worker reads, beats and reclaims, whatever its broker."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """How a worker reads, beats and reclaims (seconds throughout)."""

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 16
    allowed_modules: tuple[str, ...] = ()
    heartbeat_seconds: float = 1.0
    heartbeat_timeout: float = 10.0
    foreign_timeout: float = 600.0
    """Idle time after which messages of consumers that send no heartbeat are taken."""
    max_deliveries: int = 5
    read_block_seconds: float = 5.0
    promote_seconds: float = 0.1
    """Longest wait between two promotions of delayed messages."""
    outage_grace: float = 30.0
    """How long the broker or the store may be away before the worker gives up."""
