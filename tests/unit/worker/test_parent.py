"""A supervised worker notices that its supervisor is gone (`arvel_flow.worker.parent`)."""

from __future__ import annotations

import os

import pytest

from arvel_flow.worker.parent import supervisor_pid, tell_ready, watch_parent
from arvel_flow.worker.supervisor import READY_VARIABLE, SUPERVISOR_VARIABLE
from tests.unit.queue.flow_harness import FakeClock


async def test_watching_calls_back_once_the_parent_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a parent that is there for three polls, then gone (reparented to init)
    parents = iter([4242, 4242, 4242, 1])
    monkeypatch.setattr(os, "getppid", lambda: next(parents))
    gone: list[bool] = []
    clock = FakeClock()
    # When the child watches it
    await watch_parent(4242, lambda: gone.append(True), every=0.5, clock=clock)
    # Then it called back once, after polling every 0.5 s meanwhile
    assert gone == [True]
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_the_supervisor_is_read_from_the_environment() -> None:
    assert supervisor_pid({SUPERVISOR_VARIABLE: "123"}) == 123
    assert supervisor_pid({}) is None
    assert supervisor_pid({SUPERVISOR_VARIABLE: "x"}) is None


def test_a_ready_child_writes_r_to_its_pipe_and_closes_it() -> None:
    # Given the pipe a supervisor gave its child
    read_end, write_end = os.pipe()
    # When the child is ready
    tell_ready({READY_VARIABLE: str(write_end)})
    # Then the supervisor reads "r", then the end of the pipe
    assert os.read(read_end, 2) == b"r"
    assert os.read(read_end, 1) == b""
    os.close(read_end)


def test_a_worker_on_its_own_tells_no_one() -> None:
    tell_ready({})
