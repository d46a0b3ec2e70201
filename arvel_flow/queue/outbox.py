"""What a worker's job sends, held back to go out with the job's acknowledgement.

A worker runs a job inside `collect`: transports put what the job dispatches (the
next chain step, a retry, a callback) into the outbox instead of sending it, and the
worker sends the outbox and acknowledges the message together (atomically where the
broker allows).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar

from arvel_flow.queue.envelope import Envelope

Publish = Callable[[Sequence[Envelope], float], Awaitable[None]]
"""Sends envelopes to a broker now (``now`` tells which are delayed)."""

_outbox: ContextVar[list[Envelope] | None] = ContextVar("arvel_flow_outbox", default=None)


@contextlib.contextmanager
def collect() -> Iterator[list[Envelope]]:
    """Hold what is sent in this context (this task) in a list, instead of sending it."""
    outbox: list[Envelope] = []
    token = _outbox.set(outbox)
    try:
        yield outbox
    finally:
        _outbox.reset(token)


def current_outbox() -> list[Envelope] | None:
    """The outbox being collected in this context, if any."""
    return _outbox.get()


async def send_or_collect(envelopes: Sequence[Envelope], now: float, publish: Publish) -> None:
    """Put ``envelopes`` into the outbox being collected, or else ``publish`` them now."""
    outbox = current_outbox()
    if outbox is not None:
        outbox.extend(envelopes)
    elif envelopes:
        await publish(envelopes, now)
