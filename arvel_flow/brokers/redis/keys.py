"""Where envelopes travel through Redis: the keys of streams, delays and heartbeats.

A stream entry is ``{data: <Taskiq message>}`` (`arvel_flow.queue.wire`),
exactly what ``RedisStreamBroker.kick`` writes. So a job can be sent by bare Taskiq too::

    broker = RedisStreamBroker(url, queue_name="arvel-flow:queue:default")
    await broker.register_task(f, task_name="arvel_flow.run_envelope").kiq(envelope.to_json())

Keys, under the prefix (``arvel-flow:`` by default, the store's)::

    queue:{name}       stream  messages ready to run; consumer group ``arvel-flow``
    delayed:{name}     zset    messages by the time they become ready (backoffs, releases)
    consumers:{name}   zset    worker (consumer) names by their last heartbeat, in ms
    worker:{name}      hash    a worker's concurrency and running jobs, as of its last beat
    queues             set     every queue name a message was sent to
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GROUP", "StreamKeys"]

GROUP = "arvel-flow"
"""The consumer group every worker reads through."""


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The Redis keys of the broker side, under ``prefix``."""

    prefix: str = "arvel-flow:"

    def stream(self, queue: str) -> str:
        """The stream of ready messages of ``queue``."""
        return f"{self.prefix}queue:{queue}"

    def delayed(self, queue: str) -> str:
        """The sorted set of messages of ``queue`` waiting for their time."""
        return f"{self.prefix}delayed:{queue}"

    def consumers(self, queue: str) -> str:
        """The sorted set of the heartbeats of the workers reading ``queue``."""
        return f"{self.prefix}consumers:{queue}"

    def worker(self, name: str) -> str:
        """The hash of worker ``name``'s load (``concurrency``, ``running``), set by its beats."""
        return f"{self.prefix}worker:{name}"

    @property
    def queues(self) -> str:
        """The set of queue names messages were sent to."""
        return f"{self.prefix}queues"

    def queue_of(self, stream: str) -> str:
        """The queue name of a stream key."""
        return stream.removeprefix(f"{self.prefix}queue:")
