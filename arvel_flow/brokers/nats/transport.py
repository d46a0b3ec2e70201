"""Sending envelopes through NATS JetStream: the transport of a queue on ``broker: nats``.

One stream per prefix (``arvel-flow`` by default) keeps every queue's messages, on the
subject ``<stream>.queue.<name>``, with work-queue retention: a message is gone once a
worker acknowledges it. Workers read each queue through one durable pull consumer
(`arvel_flow.brokers.nats.consumer`).

JetStream has no delayed publish. A message with a future ``available_at`` (a backoff,
a release, ``later``) is published at once, with the time in its `AVAILABLE_AT`
header; the worker that receives it early gives it back with a negative
acknowledgement delayed until then, so it waits in JetStream, not in any process.

The body is Taskiq's message (`arvel_flow.queue.wire`), what
``taskiq_nats.PullBasedJetStreamBroker.kick`` publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from arvel_flow.brokers.watched import WatchedElsewhere
from arvel_flow.errors import BackendError
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.outbox import send_or_collect
from arvel_flow.queue.transport import Watched
from arvel_flow.queue.wire import AVAILABLE_AT, encode_message
from arvel_flow.store.urls import mask_url

logger = logging.getLogger(__name__)

_CHUNK = 500
"""Publishes awaiting their acknowledgement at once."""
_STREAM_IN_USE = 10058  # JetStream: a stream of that name exists (with another config)


def _token(name: str) -> str:
    """``name`` as one subject token or consumer name (no dots, wildcards or spaces)."""
    return "".join(c if c.isalnum() or c in "-_" else f"%{ord(c):02X}" for c in name)


@dataclass(frozen=True, slots=True)
class JetStreamNames:
    """The stream, subjects and consumers of the queues under ``prefix``."""

    prefix: str = "arvel-flow:"

    @property
    def stream(self) -> str:
        """The stream holding every queue's messages."""
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.prefix.rstrip(":")) or "arvel-flow"

    def subject(self, queue: str) -> str:
        """The subject messages of ``queue`` are published on."""
        return f"{self.stream}.queue.{_token(queue)}"

    def consumer(self, queue: str) -> str:
        """The durable consumer every worker reads ``queue`` through."""
        return _token(queue)


def describe_url(url: str) -> str:
    """How errors name the server (no password)."""
    return f"NATS {mask_url(url)}"


@contextlib.contextmanager
def nats_errors(backend: str) -> Iterator[None]:
    """Turn NATS failures (no server, timeouts, closed connections) into `BackendError`."""
    try:
        yield
    except (TimeoutError, NatsError, OSError) as error:
        reason = str(error) or type(error).__name__
        raise BackendError(backend, reason) from None


async def connect(url: str, *, name: str, connect_timeout: float = 5.0) -> Client:
    """A client connected to ``url`` that reports problems as log lines, not tracebacks;
    ``connect_timeout`` is how long one attempt to connect may take.

    Raises:
        BackendError: No server answered.
    """
    backend = describe_url(url)

    async def on_error(error: Exception) -> None:
        logger.warning("%s: %s", backend, error or type(error).__name__)

    async def on_disconnected() -> None:
        logger.debug("%s: disconnected", backend)

    with nats_errors(backend):
        client: Client = await nats.connect(
            url,
            name=name,
            connect_timeout=connect_timeout,
            # nats-py tries a first connection as often as it would reconnect (for ever
            # with -1): try twice, a second apart, then reconnect for as long as it takes.
            max_reconnect_attempts=1,
            reconnect_time_wait=1,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
        )
    client.options["max_reconnect_attempts"] = -1
    return client


async def ensure_stream(js: JetStreamContext, names: JetStreamNames) -> None:
    """Create the stream of ``names`` unless it exists."""
    config = StreamConfig(
        name=names.stream,
        subjects=[f"{names.stream}.queue.*"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
    )
    try:
        await js.add_stream(config=config)
    except BadRequestError as error:
        if error.err_code != _STREAM_IN_USE:
            raise


class NatsTransport(WatchedElsewhere):
    """Publishes envelopes to JetStream, connecting on first use.

    Args:
        url: The NATS server(s), ``nats://host:4222`` (comma-separated for several).
        prefix: Names the stream (see `JetStreamNames`).
        presence: Where the workers' heartbeats are read, if anywhere (the store's Redis:
            `arvel_flow.brokers.redis.presence`, read by `WatchedElsewhere`).
    """

    def __init__(
        self, url: str, *, prefix: str = "arvel-flow:", presence: Watched | None = None
    ) -> None:
        self.url = url
        self.presence = presence
        self.names = JetStreamNames(prefix)
        self.backend = describe_url(url)
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._connecting = asyncio.Lock()

    async def jetstream(self) -> JetStreamContext:
        """The JetStream context, connected and with the stream in place."""
        async with self._connecting:
            if self._js is None:
                client = await connect(self.url, name="arvel-flow")
                try:
                    with nats_errors(self.backend):
                        js = client.jetstream()
                        await ensure_stream(js, self.names)
                except BackendError:
                    await client.close()
                    raise
                self._client, self._js = client, js
            return self._js

    async def send(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Publish ``envelopes`` now, or into the outbox being collected."""
        await send_or_collect(envelopes, now, self.publish)

    async def publish(self, envelopes: Sequence[Envelope], now: float) -> None:
        """Publish ``envelopes``, each stored by JetStream before this returns."""
        js = await self.jetstream()
        with nats_errors(self.backend):
            for start in range(0, len(envelopes), _CHUNK):
                chunk = envelopes[start : start + _CHUNK]
                await asyncio.gather(*(self._publish(js, e) for e in chunk))

    async def _publish(self, js: JetStreamContext, envelope: Envelope) -> None:
        queue = envelope.job.settings.queue_name
        headers: dict[str, Any] = {AVAILABLE_AT: repr(envelope.available_at)}
        await js.publish(
            self.names.subject(queue), encode_message(envelope, queue), headers=headers
        )

    async def size(self, queue: str) -> int:
        """Messages of ``queue`` not acknowledged yet: waiting, delayed or running."""
        js = await self.jetstream()
        subject = self.names.subject(queue)
        with nats_errors(self.backend):
            try:
                info = await js.stream_info(self.names.stream, subjects_filter=subject)
            except NotFoundError:
                return 0
        return int((info.state.subjects or {}).get(subject, 0))

    async def close(self) -> None:
        """Flush what is pending and close the connection."""
        if self._client is not None:
            with contextlib.suppress(NatsError, OSError, asyncio.TimeoutError):
                await self._client.drain()
            self._client = self._js = None
