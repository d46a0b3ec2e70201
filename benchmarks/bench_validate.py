"""Benchmarks of the declarative layer (figures, not pass/fail tests).

Run from the repository root::

    .venv/bin/python benchmarks/bench_validate.py

* ``validate`` of a generated 5,000-step pipeline, strict, over 50 job classes
  (target: under 0.5 s as a command, #12 §5), in process and through the real command;
* a 100,000-item fan-out, strict (target: seconds);
* ``arvel-flow --help`` startup (target: under 0.25 s).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = Path(sys.executable).with_name("arvel-flow")
CLASSES = 50
STEPS = 5_000


def job_module() -> str:
    """A module of `CLASSES` job classes with a few typed parameters each."""
    lines = ["from arvel_flow.queue.job import Job", ""]
    for index in range(CLASSES):
        lines += [
            f"class Job{index}(Job):",
            "    path: str",
            "    count: int = 1",
            "    dry_run: bool = False",
            "    async def handle(self) -> None:",
            "        return None",
            "",
        ]
    return "\n".join(lines)


def pipeline() -> str:
    """`STEPS` job steps in 50 batches of a chain, with templates, policies and middleware."""
    head = [
        "version: 1",
        "name: bench",
        "defaults: {retry: standard, middleware: [audited]}",
        "retry_policies:",
        "  standard: {max_retries: 3, backoff: exponential, max_backoff: 1m, timeout_seconds: 30s}",
        "middleware_stacks:",
        "  audited: [{rate_limited: {key: 'bench-{path}', max_attempts: 10, decay_seconds: 1m}}]",
        "jobs:",
        *(
            f"  t{index}: {{class: benchjobs:Job{index}, with: {{count: 2}}}}"
            for index in range(CLASSES)
        ),
        "pipeline:",
        "  chain:",
    ]
    body: list[str] = []
    per_batch = STEPS // 50
    for batch in range(50):
        body += [f"    - id: b{batch}", "      batch:"]
        for offset in range(per_batch):
            step = batch * per_batch + offset
            job = f"t{step % CLASSES}" if step % 2 else f"benchjobs:Job{step % CLASSES}"
            body.append(
                f"        - {{id: s{step}, job: {job}, with: {{path: p{step}.csv, dry_run: true}}}}"
            )
    return "\n".join(head + body) + "\n"


def best_of(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    """(first run, best of the following runs) in seconds."""
    times = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times[0], min(times[1:])


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (folder / "benchjobs.py").write_text(job_module())
        (folder / "bench.yaml").write_text(pipeline())
        sys.path.insert(0, str(folder))
        from arvel_flow.compiler import load_pipeline

        path = folder / "bench.yaml"
        cold, warm = best_of(5, lambda: load_pipeline(path))
        print(
            f"validate --strict, {STEPS:,} steps / {CLASSES} classes, in process: "
            f"first {cold:.3f}s, best {warm:.3f}s"
        )
        command = [str(COMMAND), "validate", str(path)]
        runs = [_timed(command, cwd=folder) for _ in range(3)]
        print(
            f"arvel-flow validate (new process, imports included): best {min(runs):.3f}s "
            "(target < 0.5 s)"
        )

        items = "".join(f"      - {{count: {index}}}\n" for index in range(100_000))
        fan_out = (
            "version: 1\nname: big\npipeline:\n  batch:\n    - job: benchjobs:Job0\n"
            f"      with: {{path: x}}\n      each:\n{items}"
        )
        first, best = best_of(2, lambda: load_pipeline(fan_out))
        print(f"validate --strict, 100,000-item fan-out: first {first:.2f}s, best {best:.2f}s")

    help_runs = [_timed([str(COMMAND), "--help"], cwd=REPO) for _ in range(10)]
    print(
        f"arvel-flow --help: best {min(help_runs) * 1000:.0f} ms, median "
        f"{statistics.median(help_runs) * 1000:.0f} ms (target < 250 ms)"
    )


def _timed(command: list[str], *, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
