"""How many messages wait in each queue: read from RabbitMQ with passive declares.

A passive ``queue.declare`` of a queue's main queue answers how many messages are
ready in it (``message_count``: the depth) and how many consumers read it. Messages
in the delay buckets are not counted: like Redis's delayed set, they are not ready.
AMQP tells neither the age of a message without taking it, nor how many are taken
and unacknowledged, nor how many were acknowledged: lag, taken and the rate stay
unknown (RabbitMQ's management plugin shows them, over its own HTTP API).

RabbitMQ cannot list queues over AMQP either: the queues read are those asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika.abc import AbstractConnection
from aiormq.exceptions import ChannelNotFoundEntity

from arvel_flow.brokers.depth import QueueDepth


async def read_queues(
    connection: AbstractConnection, prefix: str, queues: Sequence[str]
) -> list[QueueDepth]:
    """Each of ``queues`` (in order, once each); a queue not declared yet counts 0.

    Raises:
        aio_pika.exceptions.AMQPError: RabbitMQ did not answer (the caller turns it into
            `BackendError`).
    """
    depths = []
    channel = await (await connection.channel()).get_underlay_channel()
    for queue in dict.fromkeys(queues):
        try:
            reply = await channel.queue_declare(f"{prefix}queue.{queue}", passive=True)
        except ChannelNotFoundEntity:  # no message was ever sent to it: the channel closed
            channel = await (await connection.channel()).get_underlay_channel()
            depths.append(QueueDepth(queue, 0, None, consumers=0))
            continue
        depths.append(
            QueueDepth(
                queue, int(reply.message_count or 0), None, consumers=int(reply.consumer_count or 0)
            )
        )
    return depths
