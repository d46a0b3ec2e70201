"""The pytest plugin of arvel-flow: the fixtures ``fake_queue`` and ``sync_queue``.

pytest loads it on its own (the ``pytest11`` entry point) in every project where
arvel-flow is installed, so it imports nothing at load time: each fixture imports what
it needs when a test asks for it. The fixtures are plain (not async) fixtures, so they
serve sync tests, pytest-asyncio tests and anyio tests alike. Their queues keep
everything in memory and run jobs inline: there is nothing to close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from arvel_flow.queue.drivers import SyncQueue
    from arvel_flow.testing.fake import FakeQueue


@pytest.fixture
def fake_queue() -> FakeQueue:
    """A `FakeQueue` that records every job and runs none: assert on what was dispatched."""
    from arvel_flow.testing.fake import FakeQueue

    return FakeQueue()


@pytest.fixture
def sync_queue() -> SyncQueue:
    """A `SyncQueue` on a memory store and a `FakeClock`: jobs run inline, waits are free."""
    from arvel_flow.queue.drivers import SyncQueue
    from arvel_flow.testing.clock import FakeClock

    return SyncQueue(clock=FakeClock())
