"""`every_while_serving`: a consumer's periodic upkeep, until its worker stops."""

from __future__ import annotations

from dataclasses import dataclass, field

from arvel_flow.errors import BackendError
from arvel_flow.outage import Outage
from arvel_flow.worker.consumer import every_while_serving


@dataclass
class FakeHost:
    """The parts of a worker `every_while_serving` uses; it stops after ``serve_for`` pauses."""

    serve_for: int
    pauses: list[float] = field(default_factory=list)
    outage: Outage = field(default_factory=lambda: Outage(float("inf"), lambda _: None))

    @property
    def stopping(self) -> bool:
        return len(self.pauses) >= self.serve_for

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


async def test_the_operation_runs_after_each_pause_and_not_once_the_worker_stops() -> None:
    # Given a worker that stops during its third pause
    host = FakeHost(serve_for=3)
    calls: list[int] = []

    async def upkeep() -> None:
        calls.append(len(host.pauses))

    # When its upkeep runs every 2 s
    await every_while_serving(host, 2.0, upkeep)  # type: ignore[arg-type]
    # Then it paused 2 s before each call, and made none after the pause it stopped in
    assert host.pauses == [2.0, 2.0, 2.0]
    assert calls == [1, 2]


async def test_an_operation_failing_in_an_outage_is_retried_through_it() -> None:
    # Given a worker serving for two pauses, whose backend fails once
    host = FakeHost(serve_for=2)
    failures = [BackendError("broker", "a moment's outage")]
    done: list[bool] = []

    async def upkeep() -> None:
        if failures:
            raise failures.pop()
        done.append(True)

    # When its upkeep runs
    await every_while_serving(host, 1.0, upkeep)  # type: ignore[arg-type]
    # Then the failed call was retried through the worker's outage, and succeeded
    assert done == [True]
