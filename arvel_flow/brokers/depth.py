"""How many messages wait in a queue, and for how long: one reading, whatever the broker.

Each broker's package reads its own (``read_depths`` in its ``__init__``, see
`arvel_flow.brokers.BrokerSides`); the queue metrics and ``arvel-flow top`` show it.
What a broker cannot tell is None, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QueueDepth"]


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """One queue as its broker sees it now.

    Attributes:
        name: The queue (a job's ``queue_name``).
        depth: Messages ready that no worker took yet.
        lag: Age in seconds of the oldest of them (0 when there is none); None when
            the broker cannot tell (RabbitMQ: only a consumer sees a message's time).
        taken: Messages workers took and did not acknowledge yet (running, or on NATS
            waiting out a delay); None when the broker cannot tell.
        consumers: Connections consuming the queue now (RabbitMQ); None when the
            broker does not say (Redis and NATS: see the workers' heartbeats).
    """

    name: str
    depth: int
    lag: float | None
    taken: int | None = None
    consumers: int | None = None
