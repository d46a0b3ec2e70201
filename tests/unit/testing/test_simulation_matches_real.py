"""The simulation of each example agrees with a real run whose jobs fail the same way.

The real run executes the examples' job classes through the real runner on a
`SyncQueue` (middleware, retries, callbacks), with each job's ``handle()`` replaced by
one that raises `ConnectionError` on the attempts a table says, as a flaky upstream
would. The simulation runs no job code at all. Both must end every step in the same
state after the same number of attempts, fire the same callbacks, and end the run
the same way.

Timeouts and releases are left to `test_simulation`: a real timeout costs real time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import examples.jobs
from arvel_flow.launch import compile_file
from arvel_flow.queue.context import current_context
from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.queue.job import is_job_class
from arvel_flow.queue.targets import FunctionCall
from arvel_flow.testing import FakeClock, run_pipeline
from arvel_flow.testing.faults import parse_faults
from arvel_flow.testing.simulation import simulate

EXAMPLES = Path(examples.jobs.__file__).parent

CASES = {
    "quickstart.yaml": [[], ["import"], ["import@1,2"], ["report"]],
    "weekly_digest.yaml": [
        [],
        ["refresh"],
        ["digests.0[*]"],
        ["digests.0[1]", "bounced"],
        ["digests.0[2]@1-2", "digests.catch"],
        ["digests.0[0]", "digests.0[5]@1-3", "compact", "report"],
    ],
    "import_fanout.yaml": [["chunks.0[3]"], ["chunks.0[0]", "chunks.0[1]"], ["chunks.0[*]@1-4"]],
    "scheduled.yaml": [["compact@1"], ["import"]],
}


def _cases() -> Iterator[Any]:
    for name, combos in CASES.items():
        for specs in combos:
            yield pytest.param(name, specs, id=f"{name}:{' '.join(specs) or 'none'}")


def _scripted_fails(specs: list[str], key: str, attempt: int) -> bool:
    """The table, read independently of the parser: STEP (a glob, or a fan-out for all
    its members) and @N, @N-M, @N,M."""
    for spec in specs:
        step, _, attempts = spec.partition("@")
        pattern = re.escape(step).replace(r"\*", ".*")
        if not re.fullmatch(pattern, key) and not re.fullmatch(pattern + r"\[\d+\]", key):
            continue
        if not attempts:
            return True
        for part in attempts.split(","):
            low, _, high = part.partition("-")
            if int(low) <= attempt <= int(high or low):
                return True
    return False


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every example job's ``handle()`` fails as the specs put in the list say."""
    table: list[str] = []

    async def handle(self: Any) -> str:
        envelope = current_context().envelope
        if _scripted_fails(table, envelope.label, envelope.attempts + 1):
            raise ConnectionError(f"{envelope.label}: upstream reset the connection")
        return "done"

    for value in vars(examples.jobs).values():
        if is_job_class(value) and value.__module__ == examples.jobs.__name__:
            monkeypatch.setattr(value, "handle", handle)
    monkeypatch.setattr(FunctionCall, "handle", handle)
    return table


@pytest.mark.parametrize(("name", "specs"), list(_cases()))
async def test_the_simulation_ends_each_step_as_the_real_run_does(
    name: str,
    specs: list[str],
    scripted: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    plan, _ = compile_file(str(EXAMPLES / name), {})
    # Given a real run whose jobs fail as the specs say
    scripted.extend(specs)
    queue = SyncQueue(clock=FakeClock())
    try:
        real = await run_pipeline(EXAMPLES / name, queue=queue)
        real_steps = await queue.store.get_steps(real.run_id)
    finally:
        await queue.close()
    # When the same pipeline is simulated with the same --fail specs
    simulation = await simulate(plan, parse_faults(specs))
    # Then every step ended the same way after as many attempts, callbacks included
    assert {k: (r.state, r.attempts) for k, r in simulation.steps.items()} == {
        k: (r.state, r.attempts) for k, r in real_steps.items()
    }
    assert simulation.result.status == real.status
    assert simulation.exit_code == (0 if real.ok else 1)
    assert set(simulation.result.failed) == set(real.failed)
