"""`NatsConsumer`: a worker's reading of NATS JetStream pull consumers.

- **Liveness, not idle time.** Each queue's durable consumer redelivers a message when
  ``ack_wait`` (the heartbeat timeout) passes without word from the worker holding it.
  While a job runs, its worker sends "in progress" for it every heartbeat interval,
  from a thread of its own (`ProgressBeats`), so a long job, or one that blocks the
  event loop, stays with its live worker, and a dead worker's jobs go to others
  once the timeout has passed.
- **Acknowledged after sending.** What a job dispatched is published (and stored by
  JetStream) before its message is acknowledged. A worker dying between the two
  leaves the message to be delivered again; that delivery finds the step finished
  and repairs the run (see `Worker`).
- **Delays in JetStream.** A message that arrives before its `AVAILABLE_AT` is given
  back with a negative acknowledgement delayed until then, without taking a slot;
  that early delivery is not counted against ``max_deliveries``.
- **Recreated when deleted.** A stream or consumer deleted under the worker (``nats
  stream rm``) is created again within a second or so, and reading goes on (what the
  stream held is lost with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

from arvel_flow.brokers.nats.transport import (
    NatsTransport,
    connect,
    describe_url,
    ensure_stream,
    nats_errors,
)
from arvel_flow.errors import BackendError
from arvel_flow.outage import Beats, Outage
from arvel_flow.queue.envelope import Envelope
from arvel_flow.queue.wire import AVAILABLE_AT
from arvel_flow.worker.consumer import Delivery, Host, every_while_serving

logger = logging.getLogger(__name__)

_EARLY_TOLERANCE = 0.01
"""Seconds before its time at which a message runs anyway."""
_CONSUMER_EXISTS = 10148  # JetStream: a consumer of that name exists (with another config)
_MAX_READ_BLOCK = 1.0
"""A fetch cannot be woken, so stopping waits for it: keep it short."""


class ProgressBeats:
    """Sends "in progress" for the messages in `subjects`, every ``interval`` seconds.

    It runs its own event loop and NATS connection in a thread, so a job that blocks
    the worker's event loop does not stop the beats.
    """

    def __init__(self, url: str, name: str, interval: float, outage: Outage) -> None:
        self.url = url
        self.name = name
        self.interval = interval
        self.subjects: tuple[str, ...] = ()
        """The reply subjects of the messages held now (replaced whole, never mutated)."""
        self.failure: BaseException | None = None
        """What stopped the beats, if anything did (see `check`)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"beats {name}", daemon=True)
        self._beats = Beats(outage)

    def start(self) -> None:
        """Start beating."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> None:
        """Raise if the beats stopped: the worker's long jobs would go to other workers."""
        if isinstance(self.failure, BackendError):
            raise self.failure  # NATS could not be reached to start them
        if self.failure is not None:
            raise RuntimeError(f"the in-progress beats of worker {self.name} stopped") from (
                self.failure
            )

    def _main(self) -> None:
        try:
            asyncio.run(self._beat())
        except BackendError as error:
            self.failure = error
            logger.warning("in-progress beats of %s cannot start: %s", self.name, error)
        except BaseException as error:
            self.failure = error
            logger.error("the in-progress beats of %s died", self.name, exc_info=error)

    async def _beat(self) -> None:
        client = await connect(self.url, name=f"{self.name} beats")
        try:
            while not self._stop.is_set():
                await asyncio.sleep(self.interval)
                await self._beat_through_outages(client)
        finally:
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                await client.close()

    async def _beat_through_outages(self, client: Client) -> None:
        """One beat for every message held; a failure is an outage (the client reconnects)."""
        try:
            with nats_errors(describe_url(self.url)):
                for subject in self.subjects:
                    await client.publish(subject, Msg.Ack.Progress)
                await client.flush(timeout=max(math.ceil(self.interval), 1))
        except BackendError as error:
            self._beats.failed(error)
        else:
            self._beats.succeeded()


class NatsConsumer:
    """Reads its worker's queues from JetStream on ``url``; publishes through ``transport``.

    Args:
        transport: The worker's queue's transport: it publishes what jobs dispatch.
        url: The NATS server(s).
    """

    def __init__(self, transport: NatsTransport, *, url: str) -> None:
        self.transport = transport
        self.url = url
        self._host: Host | None = None
        self._beats: ProgressBeats | None = None
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._subscriptions: list[tuple[str, JetStreamContext.PullSubscription]] = []
        self._turn = 0

    def bind(self, host: Host) -> None:
        """Read for ``host``; its beats ride through the host's outage."""
        self._host = host
        self._beats = ProgressBeats(
            self.url, host.name, host.options.heartbeat_seconds, host.outage
        )

    @property
    def host(self) -> Host:
        """The worker this consumer reads for."""
        assert self._host is not None, "bind the consumer to a worker first"
        return self._host

    @property
    def beats(self) -> ProgressBeats:
        """The thread that keeps the held messages in progress."""
        assert self._beats is not None, "bind the consumer to a worker first"
        return self._beats

    @property
    def where(self) -> str:
        """The NATS server (no password)."""
        return describe_url(self.url)

    async def open(self) -> None:
        """Connect, declare the stream and the queues' consumers, and start the beats."""
        names = self.transport.names
        queues = self.host.options.queues
        self._client = await connect(self.url, name=self.host.name)
        with nats_errors(self.where):
            self._js = js = self._client.jetstream()
            await self._declare(queues)
            for queue in queues:
                subscription = await js.pull_subscribe_bind(
                    durable=names.consumer(queue), stream=names.stream
                )
                self._subscriptions.append((queue, subscription))
        self.beats.start()

    async def _declare(self, queues: Sequence[str]) -> None:
        """Create the stream, and the consumers of ``queues``, unless they exist."""
        assert self._js is not None
        names = self.transport.names
        await ensure_stream(self._js, names)
        for queue in queues:
            config = ConsumerConfig(
                durable_name=names.consumer(queue),
                filter_subject=names.subject(queue),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.host.options.heartbeat_timeout,
                max_deliver=-1,
                max_ack_pending=-1,
            )
            try:
                await self._js.add_consumer(names.stream, config=config)
            except BadRequestError as error:
                if error.err_code != _CONSUMER_EXISTS:
                    raise
                logger.warning(
                    "consumer %s exists with other settings; using it as it is",
                    config.durable_name,
                )

    def maintenance(self) -> list[Coroutine[Any, Any, None]]:
        """Keeping the beats current, and the stream and consumers in place."""
        return [self._track_beats(), self._keep_consumers()]

    async def _track_beats(self) -> None:
        """Keep the beating thread's list of held messages current; notice it died."""
        host = self.host
        while not host.stopping:
            self.beats.check()
            self.beats.subjects = tuple(d.handle.reply for d in host.held)
            await host.pause(host.options.heartbeat_seconds / 2)

    async def _keep_consumers(self) -> None:
        """Create again the stream or consumers deleted under this worker.

        A pull subscription bound to a deleted consumer just finds nothing, for ever:
        it is bound to the consumer's name, so it reads again once that is recreated.
        """
        seconds = max(self.host.options.heartbeat_seconds, 1.0)
        await every_while_serving(self.host, seconds, self._restore_consumers)

    async def _restore_consumers(self) -> None:
        assert self._js is not None
        names = self.transport.names
        missing: list[str] = []
        with nats_errors(self.where):
            for queue in self.host.options.queues:
                try:
                    await self._js.consumer_info(names.stream, names.consumer(queue))
                except NotFoundError:
                    missing.append(queue)
            if missing:
                logger.warning(
                    "NATS lost stream %s or its consumers %s (deleted?): recreated them "
                    "(messages the stream held are lost)",
                    names.stream,
                    ", ".join(names.consumer(q) for q in missing),
                )
                await self._declare(missing)

    async def read(self, count: int) -> list[Delivery]:
        """New messages, at most ``count``, taking the queues in turn."""
        block = min(self.host.options.read_block_seconds, _MAX_READ_BLOCK)
        wait = max(block / len(self._subscriptions), 0.05)
        subscriptions = self._subscriptions[self._turn :] + self._subscriptions[: self._turn]
        self._turn = (self._turn + 1) % len(self._subscriptions)
        for queue, subscription in subscriptions:
            with nats_errors(self.where):
                messages = await _fetch(subscription, count, wait)
            deliveries = [d for m in messages if (d := await self._accept(queue, m))]
            if deliveries:
                held = (*self.host.held, *deliveries)
                self.beats.subjects = tuple(d.handle.reply for d in held)
                return deliveries
        return []

    async def _accept(self, queue: str, message: Msg) -> Delivery | None:
        """The delivery of ``message``; None when it came early and was given back."""
        metadata = message.metadata
        delivered = metadata.num_delivered
        available_at = _available_at(message)
        if available_at is not None:
            early = available_at - time.time()
            if early > _EARLY_TOLERANCE:
                with nats_errors(self.where):
                    await message.nak(delay=early)
                return None
            if delivered > 1 and available_at > metadata.timestamp.timestamp():
                delivered -= 1  # its first delivery came early and was given back
        return Delivery(queue, str(metadata.sequence.stream), message.data, delivered, message)

    async def settle(self, delivery: Delivery, outbox: list[Envelope]) -> None:
        """Publish ``outbox`` (stored by JetStream), then acknowledge ``delivery``."""
        await self.transport.publish(outbox, self.host.clock.now())
        with nats_errors(self.where):
            await delivery.handle.ack()

    async def wake(self) -> None:
        """Nothing to do: a fetch returns within a second."""

    async def leave(self, unfinished: Sequence[Delivery]) -> None:
        """Stop the beats, and hand ``unfinished`` back at once (a negative acknowledgement)."""
        await asyncio.to_thread(self.beats.stop)
        try:
            with nats_errors(self.where):
                for delivery in unfinished:
                    await delivery.handle.nak()
        except BackendError as error:
            logger.warning("worker %s could not hand messages back: %s", self.host.name, error)

    async def disconnect(self) -> None:
        """Close the connection."""
        if self._client is not None:
            await self._client.close()


async def _fetch(
    subscription: JetStreamContext.PullSubscription, count: int, wait: float
) -> list[Msg]:
    """Up to ``count`` messages, waiting at most ``wait`` seconds for the first."""
    try:
        return await subscription.fetch(batch=count, timeout=wait)
    except NatsTimeoutError:
        return []


def _available_at(message: Msg) -> float | None:
    raw = (message.headers or {}).get(AVAILABLE_AT)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
