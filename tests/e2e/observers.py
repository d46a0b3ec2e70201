"""Observers the end-to-end tests name in pipeline files and ``ARVEL_FLOW_OBSERVERS``."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from tests.e2e.jobs import append_line


class EventFile:
    """Appends each event, as a JSON line, to the file ``OBSERVED`` names."""

    def __init__(self) -> None:
        self.path = os.environ["OBSERVED"]

    def on_event(self, event: Any) -> None:
        append_line(self.path, json.dumps(event.to_dict()))


async def explode(event: Any) -> None:
    """Raises on every event: the run must not notice."""
    raise RuntimeError(f"observer broke on {event.event}")


_NEVER = threading.Event()


def stuck(event: Any) -> None:
    """Writes the first event it gets to ``OBSERVED``, then blocks for ever (a hung hook)."""
    append_line(os.environ["OBSERVED"], event.event)
    _NEVER.wait()
