"""`WatchedElsewhere`: a worker broker whose workers' heartbeats are kept outside it.

NATS and RabbitMQ have no place of their own where ``run`` and ``top`` could read
which workers are alive; their workers also beat into the store's Redis, when the
store is one (`arvel_flow.brokers.redis.presence`), and their transports read them
from there.
"""

from __future__ import annotations

from collections.abc import Sequence

from arvel_flow.queue.transport import Watched


class WatchedElsewhere:
    """The remote side of a transport whose workers' heartbeats ``presence`` reads.

    Attributes:
        presence: Where the workers' heartbeats are read (the store's Redis), if
            anywhere; None: no worker is known dead or alive.
    """

    remote = True
    """Jobs sent through it run in `arvel-flow worker` processes, not here."""
    publishes_events = True
    """Those workers publish the run's events to a Redis store (`arvel_flow.launch.follow`)."""

    presence: Watched | None

    async def last_heartbeats(self, queues: Sequence[str]) -> dict[str, float | None]:
        """Seconds since the newest heartbeat of a worker of each queue, as ``presence``
        reads them (`Watched`); nothing without it."""
        if self.presence is None:
            return {}
        return await self.presence.last_heartbeats(queues)
