"""Observers named by dotted path in the observer tests (events are kept in lists here)."""

from __future__ import annotations

from typing import Any

SEEN: list[str] = []


def record(event: Any) -> None:
    SEEN.append(event.event)


async def record_async(event: Any) -> None:
    SEEN.append("async " + event.event)


class Recorder:
    def on_event(self, event: Any) -> None:
        SEEN.append("class " + event.event)


class Callable_:
    def __call__(self, event: Any) -> None:
        SEEN.append("call " + event.event)


class NeedsArgs:
    def __init__(self, name: str) -> None:
        self.name = name

    def on_event(self, event: Any) -> None:
        SEEN.append(self.name)


class Silent:
    """Neither on_event nor __call__: its instances cannot receive anything."""


NOT_CALLABLE = 3
