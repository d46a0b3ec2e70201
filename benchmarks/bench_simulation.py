"""Benchmarks of the failure simulation (figures, not pass/fail tests).

Run from the repository root::

    .venv/bin/python benchmarks/bench_simulation.py

* a three-hour (4.5 h) backoff timeline: 13 retries, exponential, every attempt
  failing (issue #15: "finishes in under a second"), in process;
* the same through the real command, ``arvel-flow run FILE --dry-run --fail STEP``
  (process start, imports and file load included), against ``--dry-run`` alone (the
  listing), interleaved A, B, A, B;
* a 1,000-member fan-out whose every member fails twice then succeeds, against a
  real `SyncQueue` run of the same plan whose jobs succeed at once (what the
  orchestration costs per attempt, simulated or not), interleaved A, B, A, B.

Each figure is the median of 7 runs. Unset ``PYTHONDONTWRITEBYTECODE`` first.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = Path(sys.executable).with_name("arvel-flow")
RUNS = 7

LONG_BACKOFF = """\
version: 1
name: long-backoff
pipeline:
  chain:
    - id: import
      job: examples.jobs:ImportRows
      with: {path: rows.csv}
      retry: {max_retries: 13, backoff: exponential, backoff_base: 2, timeout_seconds: 30}
    - id: report
      job: examples.jobs:Report
"""

FAN_OUT = """\
version: 1
name: fan-out
pipeline:
  id: mail
  batch:
    - id: digests
      job: examples.jobs:Report
      retry: {max_retries: 3, backoff: [1, 5], timeout_seconds: 30}
      each: [%s]
"""


def _median(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    sys.path.insert(0, str(REPO))
    from arvel_flow.launch import compile_file
    from arvel_flow.queue.drivers import SyncQueue
    from arvel_flow.testing import FakeClock
    from arvel_flow.testing.faults import parse_faults
    from arvel_flow.testing.pipelines import run_pipeline
    from arvel_flow.testing.simulation import simulate

    with tempfile.TemporaryDirectory() as directory:
        long_file = Path(directory) / "long.yaml"
        long_file.write_text(LONG_BACKOFF)
        plan, _ = compile_file(str(long_file), {})
        faults = parse_faults(["import"])
        simulation = asyncio.run(simulate(plan, faults))
        seconds = _median(lambda: asyncio.run(simulate(plan, faults)))
        print(
            f"3-hour timeline: {simulation.elapsed / 3600:.1f} h of virtual time simulated "
            f"in {seconds * 1000:.1f} ms (in process)"
        )
        listing = [str(COMMAND), "run", str(long_file), "--dry-run"]
        simulating = [*listing, "--fail", "import"]
        timings: dict[str, list[float]] = {"sim": [], "list": []}
        for _ in range(RUNS):
            for name, command in (("sim", simulating), ("list", listing)):
                began = time.perf_counter()
                subprocess.run(command, cwd=REPO, capture_output=True, check=False)
                timings[name].append(time.perf_counter() - began)
        sim_cmd, list_cmd = (statistics.median(timings[k]) for k in ("sim", "list"))
        print(
            f"arvel-flow run --dry-run --fail: {sim_cmd * 1000:.0f} ms; --dry-run alone: "
            f"{list_cmd * 1000:.0f} ms (ratio {sim_cmd / list_cmd:.2f})"
        )

        fan_file = Path(directory) / "fan.yaml"
        items = ", ".join(f"{{title: t{index}}}" for index in range(1000))
        fan_file.write_text(FAN_OUT % items)
        fan_plan, _ = compile_file(str(fan_file), {})
        fan_faults = parse_faults(["digests[*]@1,2"])

        async def real_run() -> None:
            queue = SyncQueue(clock=FakeClock())
            await run_pipeline(fan_file, queue=queue)
            await queue.close()

        simulated: list[float] = []
        real: list[float] = []
        for _ in range(RUNS):
            began = time.perf_counter()
            asyncio.run(simulate(fan_plan, fan_faults))
            simulated.append(time.perf_counter() - began)
            began = time.perf_counter()
            asyncio.run(real_run())
            real.append(time.perf_counter() - began)
        sim, run = statistics.median(simulated), statistics.median(real)
        print(
            f"1,000-member fan-out, 3 attempts each, simulated: {sim * 1000:.0f} ms; "
            f"a real SyncQueue run, 1 attempt each: {run * 1000:.0f} ms "
            f"(per attempt: {sim / 3000 * 1e6:.0f} us simulated, {run / 1000 * 1e6:.0f} us real)"
        )


if __name__ == "__main__":
    main()
