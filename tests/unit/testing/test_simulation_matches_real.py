"""The simulation of each example agrees with a real run whose jobs fail the same way.

The real run executes the examples' job classes through the real runner on a
`SyncQueue` (middleware, retries, callbacks), with each job's ``handle()`` replaced by
one that raises `ConnectionError`, runs past its timeout or is released, on the
attempts a table says. The simulation runs no job code at all. Both must end every
step in the same state after the same number of attempts, fire the same callbacks,
and end the run the same way.

Timeouts are compared on a pipeline of the test's own, whose timeouts are 20 ms: a
real timeout costs real time.
"""

from __future__ import annotations

import asyncio
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
from arvel_flow.queue.middleware import Release
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
    # Written by the test: the examples' timeouts (30 s) would cost real time.
    "timeouts.yaml": [
        ["import@1:timeout"],
        ["import:timeout"],
        ["mail[1]@1,2:timeout", "mail[2]:timeout"],
        ["mail[*]@1:release", "mail[0]@1"],
        ["import@2:release", "import@1-2:timeout", "report@1"],
    ],
}

TIMEOUTS = """\
version: 1
name: timeouts
pipeline:
  chain:
    - id: import
      job: examples.jobs:ImportRows
      with: {path: rows.csv}
      retry: {max_retries: 2, backoff: 10, timeout_seconds: 20ms}
    - id: digests
      batch:
        - id: mail
          job: examples.jobs:SendWeeklyDigest
          each: [{user_id: 1}, {user_id: 2}, {user_id: 3}]
          retry: {max_retries: 2, backoff: [1, 5], timeout_seconds: 20ms}
      allow_failures: 1
      catch: {job: examples.jobs:Alert}
    - id: report
      job: examples.jobs:Report
      retry: {max_retries: 1, backoff: 1}
"""


def _cases() -> Iterator[Any]:
    for name, combos in CASES.items():
        for specs in combos:
            yield pytest.param(name, specs, id=f"{name}:{' '.join(specs) or 'none'}")


def _named(spec: str, key: str, attempt: int) -> bool:
    """The table, read independently of the parser: STEP (a glob, or a fan-out for all
    its members) and @N, @N-M, @N,M."""
    step, _, attempts = spec.partition(":")[0].partition("@")
    pattern = re.escape(step).replace(r"\*", ".*")
    if not re.fullmatch(pattern, key) and not re.fullmatch(pattern + r"\[\d+\]", key):
        return False
    if not attempts:
        return True
    for part in attempts.split(","):
        low, _, high = part.partition("-")
        if int(low) <= attempt <= int(high or low):
            return True
    return False


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every example job's ``handle()`` fails as the specs put in the list say: it
    raises `ConnectionError`, runs past its timeout (``:timeout``), or returns a
    `Release` once per attempt named (``:release``), the release first."""
    table: list[str] = []
    released: set[tuple[int, str, int]] = set()

    async def handle(self: Any) -> Any:
        envelope = current_context().envelope
        key, attempt = envelope.label, envelope.attempts + 1
        named = [(i, spec) for i, spec in enumerate(table) if _named(spec, key, attempt)]
        for index, spec in named:
            if spec.endswith(":release") and (index, key, attempt) not in released:
                released.add((index, key, attempt))
                return Release(1.0, "scripted")
        if any(spec.endswith(":timeout") for _, spec in named):
            await asyncio.sleep(3600)  # the runner's timeout cancels it
        if any(not spec.endswith(":release") for _, spec in named):
            raise ConnectionError(f"{key}: upstream reset the connection")
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
    path = EXAMPLES / name
    if name == "timeouts.yaml":
        path = tmp_path / name
        path.write_text(TIMEOUTS)
    plan, _ = compile_file(str(path), {})
    # Given a real run whose jobs fail as the specs say
    scripted.extend(specs)
    queue = SyncQueue(clock=FakeClock())
    try:
        real = await run_pipeline(path, queue=queue)
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
