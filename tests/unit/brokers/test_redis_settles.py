"""Jobs that settle together on Redis: their MULTI never splits one job's sends from its ack."""

from __future__ import annotations

from typing import Any, cast

from arvel_flow.brokers.redis.consumer import _one_multi_each
from arvel_flow.brokers.redis.transport import CHUNK
from arvel_flow.queue.envelope import Envelope
from arvel_flow.worker.consumer import Delivery


def settle(name: str, sends: int) -> tuple[Delivery, list[Envelope]]:
    outbox = cast(list[Envelope], [object()] * sends)
    return Delivery("default", name, b"", 1), outbox


def names(groups: list[list[Any]]) -> list[list[str]]:
    return [[delivery.message_id for delivery, _ in group] for group in groups]


def test_jobs_that_sent_little_share_one_multi() -> None:
    settles = [settle(f"m{i}", 3) for i in range(16)]
    assert names(_one_multi_each(settles)) == [[f"m{i}" for i in range(16)]]


def test_a_job_that_sent_much_is_acknowledged_with_all_it_sent() -> None:
    # Given three jobs settling at once, the second of which claimed 900 members
    settles = [settle("a", 200), settle("b", 900), settle("c", 5)]
    groups = _one_multi_each(settles)
    # Then each MULTI holds whole jobs, the big one with none that would overflow it
    assert names(groups) == [["a"], ["b", "c"]]
    for group in groups:
        assert sum(len(outbox) + 2 for _, outbox in group) <= CHUNK


def test_one_job_larger_than_a_multi_stays_in_one_group() -> None:
    # (The transport then sends its first chunks ahead and its last with the ack.)
    assert names(_one_multi_each([settle("huge", 2 * CHUNK)])) == [["huge"]]
