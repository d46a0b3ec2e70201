"""Benchmarks of the declarative layer (figures, not pass/fail tests).

Run from the repository root::

    .venv/bin/python benchmarks/bench_validate.py

* ``validate`` of a generated 5,000-step pipeline, strict, over 50 job classes, in
  process and as a command (target: under 0.5 s as a command, #12 §5);
* a 100,000-item fan-out, strict, in process (target: seconds);
* ``arvel-flow --help`` start-up (target: under 0.25 s).

The commands run interleaved (validate, ``--help``, ``python -c pass``, validate, ...),
``BENCH_REPEATS`` times each (default 7), with compiled bytecode cached as users have
it; medians are printed, and validate's time as a multiple of ``--help``'s measured in
the same run, which stays meaningful on a loaded machine (a quiet one runs ``--help``
in about 0.1 s, so the target is a ratio under 5). ``BENCH_BEFORE=DIR`` adds the
validate of the ``arvel_flow`` package in DIR (``git archive REV arvel_flow | tar -x
-C DIR``) to the rotation, for a before/after ratio.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLASSES = 50
STEPS = 5_000
REPEATS = int(os.environ.get("BENCH_REPEATS", "7"))
BEFORE = os.environ.get("BENCH_BEFORE")


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
        compare_commands(folder, path)

        items = "".join(f"      - {{count: {index}}}\n" for index in range(100_000))
        fan_out = (
            "version: 1\nname: big\npipeline:\n  batch:\n    - job: benchjobs:Job0\n"
            f"      with: {{path: x}}\n      each:\n{items}"
        )
        first, best = best_of(2, lambda: load_pipeline(fan_out))
        print(f"validate --strict, 100,000-item fan-out: first {first:.2f}s, best {best:.2f}s")


def compare_commands(folder: Path, path: Path) -> None:
    """The commands, interleaved; medians of wall and CPU time, and ratios to ``--help``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    python = [sys.executable, "-c"]
    entry = "import sys; from arvel_flow.cli.app import main; sys.argv[0] = 'arvel-flow'; main()"
    # What the arvel-flow script runs, with this interpreter: the same form for every
    # side, including a BENCH_BEFORE tree, which has no script of its own.
    sides: dict[str, tuple[list[str], dict[str, str]]] = {
        "validate": ([*python, entry, "validate", str(path)], env),
        "--help": ([*python, entry, "--help"], env),
        "python -c pass": ([*python, "pass"], env),
    }
    if BEFORE:
        before_env = {**env, "PYTHONPATH": BEFORE}
        sides["validate (BENCH_BEFORE)"] = ([*python, entry, "validate", str(path)], before_env)
    for command, side_env in sides.values():  # warm the bytecode caches
        _timed(command, cwd=folder, env=side_env)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(REPEATS):
        for name, (command, side_env) in sides.items():
            times[name].append(_timed(command, cwd=folder, env=side_env))
    print(f"commands, interleaved, medians of {REPEATS}:")
    medians = {
        name: (statistics.median(t[0] for t in runs), statistics.median(t[1] for t in runs))
        for name, runs in times.items()
    }
    help_wall, help_cpu = medians["--help"]
    for name, (wall, cpu) in medians.items():
        print(
            f"  {name:26} wall {wall:6.3f}s ({wall / help_wall:4.1f}x --help)  "
            f"cpu {cpu:6.3f}s ({cpu / help_cpu:4.1f}x --help)"
        )
    if BEFORE:
        before_wall, before_cpu = medians["validate (BENCH_BEFORE)"]
        wall, cpu = medians["validate"]
        print(f"  validate / before: wall {wall / before_wall:.2f}x, cpu {cpu / before_cpu:.2f}x")
    print(
        "  target: validate < 0.5 s on a quiet machine, where --help takes about 0.1 s "
        "(a ratio under 5); --help < 0.25 s"
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command``."""
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started, _children_cpu() - cpu


if __name__ == "__main__":
    main()
