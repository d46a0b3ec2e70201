"""A run's events in the store's Redis: a capped stream per run, written by the workers.

Workers publish every event of the runs they execute (`RunEventPublisher`); ``arvel-flow
run`` (and `Run.follow` of a distributed run) reads them with a blocking ``XREAD``
(`RunEventReader`), so it shows a run executed elsewhere live, and learns that it ended
from its ``run.finished`` without polling. Key, under the store's prefix::

    events:{run_id}    stream  {events: <a JSON array of events, SPEC §5>}, about `MAXLEN` long

Publishing never slows or breaks a job: events are buffered and written by one task,
in one pipelined round trip, the events of one run in entries of up to `PER_ENTRY`
(one ``XADD`` and one JSON encoding per entry, not per event). When Redis fails (or
the buffer is full) the events are dropped and counted in `RunEventPublisher.dropped`;
one log line says how many once writing works again (or at close). The outage itself
the worker says. Each write renews the stream's expiry (`ACTIVE_TTL`); once the run has finished it
expires sooner (`FINISHED_TTL`). Values registered as secret are scrubbed from the text.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from arvel_flow.errors import BackendError
from arvel_flow.redis_support import redis_errors
from arvel_flow.secrets import scrub_text
from arvel_flow.store.urls import mask_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

MAXLEN = 1_000
"""Entries kept per run (about: ``XADD MAXLEN ~`` trims whole nodes); each holds up to
`PER_ENTRY` events, as many as were published together."""
PER_ENTRY = 100
"""Most events in one stream entry."""
ACTIVE_TTL = 7 * 86_400
"""Seconds a run's stream lives after its last event while the run goes on."""
FINISHED_TTL = 3_600
"""Seconds a run's stream lives once the run has finished."""
BUFFER = 50_000
"""Events waiting to be written, at most; more are dropped (Redis is too slow or away)."""
FIELD = "events"
FINAL_EVENT = "run.finished"


# Values JSON cannot hold become text: publishing an event must not fail.
_ENCODER = json.JSONEncoder(default=str)


def stream_key(prefix: str, run_id: str) -> str:
    """The key of ``run_id``'s event stream under ``prefix``."""
    return f"{prefix}events:{run_id}"


class RunEventPublisher:
    """Writes run events to their runs' streams, batched, from one background task.

    Args:
        client: The store's Redis (a client of its own: it outlives the worker's store).
        prefix: The store's key prefix.
        backend: The server, named for people.
        maxlen, ttl, finished_ttl: See `MAXLEN`, `ACTIVE_TTL`, `FINISHED_TTL`.
    """

    def __init__(
        self,
        client: Redis,
        prefix: str,
        backend: str,
        *,
        maxlen: int = MAXLEN,
        ttl: float = ACTIVE_TTL,
        finished_ttl: float = FINISHED_TTL,
        buffer: int = BUFFER,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._backend = backend
        self._maxlen = maxlen
        self._ttl = max(1, round(ttl))
        self._finished_ttl = max(1, round(finished_ttl))
        self._capacity = buffer
        self._pending: list[tuple[str, Mapping[str, Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._lost = 0
        self._bug_shown = False
        self.dropped = 0
        """Events that could not be written (Redis failed, or the buffer was full)."""

    @classmethod
    def from_url(cls, url: str, prefix: str, **options: Any) -> RunEventPublisher:
        """A publisher on a client of its own to the store's Redis at ``url``."""
        from redis.asyncio import Redis

        client = Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10
        )
        return cls(client, prefix, mask_url(url), **options)

    def publish(self, run_id: str, fields: Mapping[str, Any]) -> None:
        """Queue one event (its SPEC §5 JSON form) for ``run_id``'s stream; never raises."""
        if self._closed or len(self._pending) >= self._capacity:
            self._drop(1)
            return
        if self._task is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._drop(1)
                return
            self._task = loop.create_task(self._run(), name="arvel-flow run events")
        self._pending.append((run_id, fields))
        self._wake.set()

    async def flush(self) -> None:
        """Write what is buffered now (the background task does it too)."""
        while self._pending:
            batch, self._pending = self._pending, []
            await self._write(batch)

    async def close(self) -> None:
        """Write what is left, then stop and close the client (the publisher's own)."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        self._say_lost()
        await self._client.aclose()

    async def _run(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def _write(self, batch: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        runs: dict[str, list[Mapping[str, Any]]] = {}
        for run_id, fields in batch:
            runs.setdefault(run_id, []).append(fields)
        try:
            with redis_errors(self._backend):
                async with self._client.pipeline(transaction=False) as pipe:
                    for run_id, events in runs.items():
                        key = stream_key(self._prefix, run_id)
                        for start in range(0, len(events), PER_ENTRY):
                            chunk = events[start : start + PER_ENTRY]
                            text = scrub_text(_ENCODER.encode(chunk))
                            pipe.xadd(key, {FIELD: text}, maxlen=self._maxlen, approximate=True)
                        final = any(e.get("event") == FINAL_EVENT for e in events)
                        pipe.expire(key, self._finished_ttl if final else self._ttl)
                    await pipe.execute()
        except BackendError:
            # An outage: the worker says it (once); what was lost is said when it ends.
            self._drop(len(batch))
        except Exception as error:
            # Publishing must never break a job: anything else is a bug, shown once.
            self._drop(len(batch))
            if not self._bug_shown:
                self._bug_shown = True
                logger.error("run events: could not write events", exc_info=error)
        else:
            self._say_lost()

    def _drop(self, count: int) -> None:
        self.dropped += count
        self._lost += count

    def _say_lost(self) -> None:
        """One line for the events dropped since the last one said."""
        if self._lost:
            logger.warning(
                "run events: %d dropped (Redis failed or fell behind); `arvel-flow run` "
                "showed less of the runs they belong to",
                self._lost,
            )
            self._lost = 0


class RunEventReader:
    """Reads one run's event stream, waiting for new events with a blocking ``XREAD``."""

    def __init__(self, client: Redis, prefix: str, backend: str) -> None:
        self._client = client
        self._prefix = prefix
        self._backend = backend

    async def last_id(self, run_id: str) -> str:
        """The id of the stream's newest entry ("0-0" when none): read after it."""
        with redis_errors(self._backend):
            newest: Any = await self._client.xrevrange(stream_key(self._prefix, run_id), count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def read(
        self, run_id: str, after: str, block: float, count: int = 1_000
    ) -> list[tuple[str, dict[str, Any]]]:
        """Events after entry ``after`` (each with its entry's id), waiting up to ``block`` s.

        Events of one entry share its id. What is not an event (written by something
        else) is skipped.
        """
        key = stream_key(self._prefix, run_id)
        with redis_errors(self._backend):
            answer: Any = await self._client.xread(
                {key: after}, count=count, block=max(1, round(block * 1000))
            )
        events = []
        for _, entries in answer or ():
            for entry_id, values in entries:
                try:
                    found = json.loads(values.get(FIELD))
                except (TypeError, ValueError):
                    continue
                for data in found if isinstance(found, list) else ():
                    if isinstance(data, dict) and isinstance(data.get("event"), str):
                        events.append((_text(entry_id), data))
        return events


@runtime_checkable
class RunEventSource(Protocol):
    """A store whose workers publish run events where this process can read them."""

    def run_events(self) -> RunEventReader:
        """A reader of the run event streams, on the store's own connection."""
        ...


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
