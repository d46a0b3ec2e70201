"""Where the memory of a large ``arvel-flow run`` goes: a tracemalloc snapshot of the command.

Runs the real ``run`` command in this process (the same click entry point as the
installed ``arvel-flow``) on the fan-out file `bench_scale` writes, with the memory
store, and takes one tracemalloc snapshot just before the run is marked finished:
the moment every member's record is held and nothing was yet let go. Prints the
largest allocation sites, by line and by call stack, and the peak RSS.

tracemalloc slows the run several times; use ``--no-trace`` for the RSS alone.

Run: ``.venv/bin/python benchmarks/profile_scale_memory.py --count 100000 --form matrix``
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench_scale import pipeline

from arvel_flow.cli.app import main as cli_main
from arvel_flow.store.memory import MemoryStore

FRAMES = 10


def install_snapshot_hook(snapshots: list[tracemalloc.Snapshot]) -> None:
    """Snapshot once, when the first run reaches a final status."""
    original = MemoryStore.set_run_status

    async def set_run_status(self: MemoryStore, run_id: str, status: Any, at: float) -> bool:
        if tracemalloc.is_tracing() and not snapshots and status in ("succeeded", "failed"):
            snapshots.append(tracemalloc.take_snapshot())
        return await original(self, run_id, status, at)

    MemoryStore.set_run_status = set_run_status  # type: ignore[method-assign]


def report(snapshot: tracemalloc.Snapshot, top: int) -> None:
    """The largest allocation sites, by line and by stack."""
    print(f"Top {top} allocation sites at the end of the run:", file=sys.stderr)
    for stat in snapshot.statistics("lineno")[:top]:
        print(f"  {stat}", file=sys.stderr)
    print("Largest call stacks:", file=sys.stderr)
    for stat in snapshot.statistics("traceback")[:5]:
        print(f"  {stat.size / 2**20:.1f} MiB in {stat.count:,} blocks", file=sys.stderr)
        for line in stat.traceback.format()[-FRAMES:]:
            print(f"    {line}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="Fan-out size.")
    parser.add_argument("--form", choices=("each", "matrix"), default="matrix")
    parser.add_argument("--top", type=int, default=15, help="Allocation sites shown.")
    parser.add_argument("--no-trace", action="store_true", help="Peak RSS only.")
    args = parser.parse_args()
    snapshots: list[tracemalloc.Snapshot] = []
    install_snapshot_hook(snapshots)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fan_out.yaml"
        path.write_text(pipeline(args.count, args.form), encoding="utf-8")
        if not args.no_trace:
            tracemalloc.start(FRAMES)
        sys.argv = ["arvel-flow", "run", str(path), "--store", "memory", "--output", "plain"]
        start = time.perf_counter()
        with contextlib.suppress(SystemExit):  # click ends with the run's exit code
            cli_main()
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.count:,} {args.form}: {seconds:.1f} s, peak RSS {peak:.1f} MB"
        + (" (traced)" if snapshots else ""),
        file=sys.stderr,
    )
    if snapshots:
        report(snapshots[0], args.top)


if __name__ == "__main__":
    main()
