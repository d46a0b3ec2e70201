"""`Supervisor`: stopping, restarting and giving up, with fake children on a fake clock.

The integration tests (`tests/integration/test_worker_processes.py`) run the real
command with real children on Redis.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import pytest

from arvel_flow.worker.supervisor import (
    RestartPolicy,
    Supervisor,
    compute_restart_delay,
    format_exit,
)
from tests.unit.queue.flow_harness import FakeClock


class Lines(list[str]):
    """What a supervisor said: the lines in order, and each one's level in ``levels``."""

    def __init__(self) -> None:
        super().__init__()
        self.levels: list[int] = []

    def __call__(self, line: str, level: int) -> None:
        self.append(line)
        self.levels.append(level)


class FakeChild:
    """A child that exits when told to, or on SIGTERM like a worker (0, then 130)."""

    def __init__(self, pid: int, *, graceful: bool, ready: bool = True) -> None:
        self.pid = pid
        self.graceful = graceful
        self.ready = ready
        self.signals: list[int] = []
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)
        if self.graceful:
            self.exit(0 if len(self.signals) == 1 else 130)

    def exit(self, code: int) -> None:
        if not self._exit.done():
            self._exit.set_result(code)

    @property
    def exited(self) -> bool:
        return self._exit.done()


class Children:
    """The spawner: every child it started; ``exit_at_once`` children die on starting."""

    def __init__(
        self, *, graceful: bool = True, exit_at_once: int | None = None, ready: bool = True
    ) -> None:
        self.started: list[FakeChild] = []
        self.graceful = graceful
        self.exit_at_once = exit_at_once
        self.ready = ready

    async def __call__(self) -> FakeChild:
        await asyncio.sleep(0)
        child = FakeChild(100 + len(self.started), graceful=self.graceful, ready=self.ready)
        self.started.append(child)
        if self.exit_at_once is not None:
            child.exit(self.exit_at_once)
        return child

    @property
    def running(self) -> list[FakeChild]:
        return [child for child in self.started if not child.exited]


class StoppedClock(FakeClock):
    """Time that never moves: a sleep ends only when cancelled."""

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.Event().wait()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def supervisor_of(
    children: Children, processes: int = 2, clock: FakeClock | None = None
) -> tuple[Supervisor, Lines, FakeClock]:
    lines = Lines()
    clock = clock or FakeClock()
    return Supervisor(processes, children, say=lines, clock=clock), lines, clock


async def test_it_starts_n_children_and_a_stop_lets_them_finish_then_returns_0() -> None:
    # Given a supervisor of 2 processes
    children = Children()
    supervisor, lines, _ = supervisor_of(children)
    running = asyncio.create_task(supervisor.run())
    await settle()
    assert len(children.running) == 2
    # When it is stopped once
    supervisor.stop()
    # Then every child got one SIGTERM, and it returns 0 once they exited
    assert await running == 0
    assert [child.signals for child in children.started] == [[signal.SIGTERM]] * 2
    assert lines == []


async def test_a_second_stop_passes_the_second_signal_on_and_returns_130() -> None:
    # Given children that take their time to finish their jobs
    children = Children(graceful=False)
    supervisor, _, _ = supervisor_of(children)
    running = asyncio.create_task(supervisor.run())
    await settle()
    # When it is stopped twice, and the children then cancel their jobs (130)
    supervisor.stop()
    supervisor.stop()
    for child in children.started:
        child.exit(130)
    # Then each child got SIGTERM twice, and the supervisor exits 130
    assert await running == 130
    assert [child.signals for child in children.started] == [[signal.SIGTERM] * 2] * 2


async def test_a_child_that_dies_is_restarted_after_a_delay_with_one_line() -> None:
    # Given a running supervisor
    children = Children()
    supervisor, lines, clock = supervisor_of(children)
    running = asyncio.create_task(supervisor.run())
    await settle()
    # When a child is killed, and another exits 1 after a long life
    children.started[0].exit(-signal.SIGKILL)
    await settle()
    clock._now += 119.75  # (the first restart delay moved it 0.25 already)
    children.started[1].exit(1)
    await settle()
    # Then both are replaced, each after the first delay, and each said so
    assert len(children.running) == 2
    assert clock.sleeps == [0.25, 0.25]
    assert lines == [
        "worker process 100 was killed by SIGKILL after 0.0s; starting another in 0.25s",
        "worker process 101 exited with code 1 after 120.0s; starting another in 0.25s",
    ]
    assert lines.levels == [logging.WARNING, logging.WARNING]
    supervisor.stop()
    assert await running == 0


async def test_every_child_reaped_is_told_to_on_exit_before_its_replacement_starts() -> None:
    # Given a supervisor told of each child that exits
    children = Children()
    reaped: list[tuple[int, int]] = []
    supervisor = Supervisor(
        2,
        children,
        say=lambda *_: None,
        clock=FakeClock(),
        on_exit=lambda pid: reaped.append((pid, len(children.started))),
    )
    running = asyncio.create_task(supervisor.run())
    await settle()
    # When a child is killed with SIGKILL (it cannot say so itself), then all stop
    children.started[0].exit(-signal.SIGKILL)
    await settle()
    supervisor.stop()
    assert await running == 0
    # Then the killed one was reported before another started, and each stopped one too
    assert reaped[0] == (100, 2)
    assert sorted(pid for pid, _ in reaped) == [100, 101, 102]


async def test_an_on_exit_that_raises_is_said_and_the_supervisor_goes_on() -> None:
    # Given a supervisor whose on_exit hook fails
    children = Children()
    lines = Lines()

    def broken(pid: int) -> None:
        raise OSError(f"cannot drop the figures of {pid}")

    supervisor = Supervisor(2, children, say=lines, clock=FakeClock(), on_exit=broken)
    running = asyncio.create_task(supervisor.run())
    await settle()
    # When a child dies
    children.started[0].exit(-signal.SIGKILL)
    await settle()
    # Then the failure is said, and the child is replaced all the same
    assert lines[0] == "warning: after worker process 100 exited: cannot drop the figures of 100"
    assert lines.levels[0] == logging.WARNING
    assert len(children.running) == 2
    supervisor.stop()
    assert await running == 0


async def test_a_child_crashing_in_a_loop_backs_off_then_the_supervisor_gives_up() -> None:
    # Given children that all crash at once (exit 1)
    children = Children(exit_at_once=1)
    supervisor, lines, clock = supervisor_of(children, processes=1)
    # When the supervisor runs
    code = await supervisor.run()
    # Then it waited longer each time, and gave up after the 5th quick crash, exit 1
    assert code == 1
    assert clock.sleeps == [0.25, 0.5, 1.0, 2.0]
    assert len(children.started) == 5
    assert lines[-1] == (
        "error: worker process 104 exited with code 1 after 0.0s: "
        "5 exits in a row within 60s of starting; giving up"
    )
    assert lines.levels[-1] == logging.ERROR


async def test_giving_up_on_one_slot_stops_the_other_children_gracefully() -> None:
    # Given two slots, the first of which keeps dying of a signal
    children = Children()
    supervisor, lines, _ = supervisor_of(children)
    running = asyncio.create_task(supervisor.run())
    await settle()
    for _ in range(5):
        first = children.started[0] if len(children.started) == 2 else children.started[-1]
        first.exit(-signal.SIGSEGV)
        await settle()
    # Then it gave up with exit 1 (a signal), and the healthy child was stopped
    assert await running == 1
    assert children.started[1].signals == [signal.SIGTERM]
    assert "was killed by SIGSEGV" in lines[-1]
    assert children.running == []


async def test_a_child_exiting_2_stops_everything_without_a_restart() -> None:
    # Given children whose settings are invalid (exit 2)
    children = Children(exit_at_once=2)
    supervisor, lines, clock = supervisor_of(children)
    # When the supervisor runs, then it exits 2 at once
    assert await supervisor.run() == 2
    assert clock.sleeps == []
    assert lines[-1].endswith("exited with code 2 after 0.0s: its settings are invalid; stopping")


async def test_a_child_that_cannot_reach_its_broker_at_start_stops_everything_at_once() -> None:
    # Given children that exit 3 before they are ready (the broker cannot be reached)
    children = Children(exit_at_once=3, ready=False)
    supervisor, lines, clock = supervisor_of(children)
    # When the supervisor runs, then it exits 3 at once, restarting none
    assert await supervisor.run() == 3
    assert clock.sleeps == []
    assert lines[-1].endswith("exited with code 3 after 0.0s: it could not start; stopping")


async def test_a_child_exiting_3_once_others_were_ready_is_restarted() -> None:
    # Given a running supervisor whose children were ready
    children = Children()
    supervisor, lines, _ = supervisor_of(children)
    running = asyncio.create_task(supervisor.run())
    await settle()
    # When one child gives up on an outage (exit 3)
    children.started[0].exit(3)
    await settle()
    # Then it is started again (the outage may be over)
    assert len(children.running) == 2
    assert lines == ["worker process 100 exited with code 3 after 0.0s; starting another in 0.25s"]
    supervisor.stop()
    assert await running == 0


async def test_a_child_that_cannot_be_started_stops_everything_with_one_line() -> None:
    # Given a system out of processes
    async def spawn() -> FakeChild:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    lines = Lines()
    supervisor = Supervisor(2, spawn, say=lines, clock=FakeClock())
    # When the supervisor runs, then it exits 1, saying why once
    assert await supervisor.run() == 1
    assert lines == [
        "error: could not start a worker process: [Errno 11] Resource temporarily unavailable"
    ]


async def test_a_stop_during_a_restart_delay_starts_no_child() -> None:
    # Given a child that died, its replacement waiting out a long delay
    children = Children()
    policy = RestartPolicy(first_delay=30.0, max_delay=30.0)
    clock = StoppedClock()
    lines = Lines()
    supervisor = Supervisor(1, children, say=lines, clock=clock, policy=policy)
    running = asyncio.create_task(supervisor.run())
    await settle()
    children.started[0].exit(1)
    await settle()
    # When it is stopped then
    supervisor.stop()
    # Then it returns at once, and started nothing more
    assert await asyncio.wait_for(running, 5) == 0
    assert len(children.started) == 1
    assert clock.sleeps == [30.0]


def test_the_restart_delay_doubles_up_to_its_maximum() -> None:
    policy = RestartPolicy(first_delay=1.0, max_delay=5.0)
    assert [compute_restart_delay(n, policy) for n in range(1, 6)] == [1, 2, 4, 5, 5]


@pytest.mark.parametrize(
    ("code", "text"),
    [(0, "exited with code 0"), (3, "exited with code 3"), (-9, "was killed by SIGKILL")],
)
def test_an_exit_is_said_in_words(code: int, text: str) -> None:
    assert format_exit(code) == text
