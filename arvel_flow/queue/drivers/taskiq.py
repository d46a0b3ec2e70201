"""`TaskiqQueue`: the ``taskiq`` driver, a `Queue` whose transport its arguments pick.

- No broker (or Taskiq's ``InMemoryBroker``): a `LocalTransport`, an asyncio pool in
  this process running at most ``concurrency`` jobs at once. Envelopes go straight to
  the pool: no Taskiq broker round trip.
- A ``RedisStreamBroker``: a `RedisStreamTransport` to that broker's server (streams
  per queue, delays in Redis), read by ``arvel-flow worker`` processes. Only the
  broker's connection settings are used; the broker is never started.
- Any other Taskiq broker: a `KickTransport`, which ``kiq``s envelopes through it for
  Taskiq's own workers.
- ``transport``: that transport, whatever the broker (the wiring passes NATS and
  RabbitMQ transports this way, and Redis ones built from settings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arvel_flow.lazy import lazy_exports
from arvel_flow.queue.front import Queue
from arvel_flow.queue.transport import Transport
from arvel_flow.queue.transports.local import LocalTransport

if TYPE_CHECKING:
    from taskiq import AsyncBroker

    from arvel_flow.queue.transports.kick import KickTransport

__all__ = ["KickTransport", "TaskiqQueue", "Transport"]


# Taskiq is imported only for a Taskiq broker: importing it (and the aiohttp it
# pulls in) costs a command's start-up ~0.2 s that no arvel-flow broker needs.
__getattr__, __dir__ = lazy_exports(__name__, {"KickTransport": "arvel_flow.queue.transports.kick"})


class TaskiqQueue(Queue):
    """Runs jobs here in a pool, or sends them to workers through a broker.

    Args:
        broker: None or an ``InMemoryBroker`` runs jobs in this process, at most
            ``concurrency`` at once; a ``RedisStreamBroker`` sends them to
            ``arvel-flow worker`` processes; any other broker to Taskiq workers.
        concurrency: The in-process limit (workers have their own).
        transport: How envelopes travel, instead of what ``broker`` implies.

    Attributes:
        broker: The broker given (None when none was: no broker is built for show).
    """

    def __init__(
        self,
        broker: AsyncBroker | None = None,
        *,
        concurrency: int = 16,
        transport: Transport | None = None,
        **options: Any,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.broker = broker
        self.concurrency = concurrency
        if transport is None:
            transport = _transport_for(broker, concurrency)
        super().__init__(transport, **options)


def _transport_for(broker: AsyncBroker | None, concurrency: int) -> Transport:
    """The transport ``broker`` implies (see the module's docstring)."""
    if broker is None:
        return LocalTransport(concurrency)
    from taskiq import InMemoryBroker
    from taskiq_redis import RedisStreamBroker

    from arvel_flow.queue.transports.kick import KickTransport

    if isinstance(broker, InMemoryBroker):
        return LocalTransport(concurrency)

    if isinstance(broker, RedisStreamBroker):
        from arvel_flow.brokers.redis.transport import RedisStreamTransport

        return RedisStreamTransport.for_broker(broker)
    return KickTransport(broker)
