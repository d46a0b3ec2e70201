"""`Delivery`: one message handed to a worker, whatever the broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to this worker, and how often it has been handed out.

    ``data`` is the raw message (a Taskiq message carrying an envelope, or anything a
    stranger sent); ``handle`` is what the broker needs to acknowledge it.
    """

    queue: str
    message_id: str
    data: bytes | None
    deliveries: int
    handle: Any = field(default=None, compare=False, repr=False)
