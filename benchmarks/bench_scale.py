"""The scale curve of ``arvel-flow run``: fan-outs of 1k to 1M no-op jobs, time and memory.

Each point is the real command in a fresh process (``arvel-flow run FILE --output
plain``) on a file whose one batch member is a fan-out of ``n`` items, written as an
``each`` list or as a one-axis ``matrix``; the run state is in a sqlite file or in
memory. Printed per point: jobs per second (wall time of the whole command, start-up
and parsing included) and the command's peak RSS (``wait4``'s rusage). The cost must
grow linearly in time (flat jobs/s) and stay flat in memory.

Targets (#12 §2): the 100,000-item fan-out at >= 12k jobs/s with sqlite; the 1,000,000-item
matrix (memory store) at >= 0.8x the 100k rate; peak RSS < 150 MB in both forms.

Run: ``.venv/bin/python benchmarks/bench_scale.py`` (``--max 100000`` stops the curve
there; ``--repeats N`` takes the median of N runs per point, default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_embedded import child_rss

SIZES = (1_000, 10_000, 100_000, 1_000_000)
RATE_TARGET = 12_000
RSS_TARGET_MB = 150
COMMAND = Path(sys.executable).parent / "arvel-flow"


def pipeline(count: int, form: str) -> str:
    """A file whose batch holds one fan-out of ``count`` no-op jobs, as ``form``."""
    if form == "each":
        fan_out = f"each: {json.dumps([{'n': i} for i in range(count)], separators=(',', ':'))}"
    else:
        fan_out = f"matrix: {{n: {json.dumps(list(range(count)), separators=(',', ':'))}}}"
    return (
        "version: 1\nname: fan-out\npipeline:\n  batch:\n"
        f"    - job: bench_core:NoOp\n      {fan_out}\n"
    )


def run_point(count: int, form: str, store: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of ``arvel-flow run`` on a ``count``-item fan-out."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fan_out.yaml"
        path.write_text(pipeline(count, form), encoding="utf-8")
        where = "memory" if store == "memory" else f"sqlite:{directory}/state.db"
        args = [str(COMMAND), "run", str(path), "--store", where, "--output", "plain"]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent)}
        start = time.perf_counter()
        peak, _ = child_rss(args, env)
        return time.perf_counter() - start, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=SIZES[-1], help="Largest fan-out measured.")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per point (median).")
    args = parser.parse_args()
    points = [
        (count, form, store)
        for count in SIZES
        if count <= args.max
        for form in ("each", "matrix")
        # 1M items: the matrix on the memory store, as #12 asks (sqlite: a 1M-row file)
        for store in (("memory",) if count >= 1_000_000 else ("sqlite", "memory"))
        if not (count >= 1_000_000 and form == "each")
    ]
    samples: dict[tuple[int, str, str], list[tuple[float, float]]] = {p: [] for p in points}
    for _ in range(args.repeats):
        for point in points:  # interleaved: every point once per round
            samples[point].append(run_point(*point))
    print("arvel-flow run of an n-item fan-out (fresh process per run, start-up included):")
    print(f"  {'n':>9}  {'form':<6} {'store':<6} {'jobs/s':>8}  {'peak RSS':>9}")
    rates: dict[tuple[int, str, str], float] = {}
    for point, runs in samples.items():
        seconds = statistics.median(s for s, _ in runs)
        peak = max(rss for _, rss in runs)
        rates[point] = point[0] / seconds
        flag = "" if peak < RSS_TARGET_MB else f"  (> {RSS_TARGET_MB} MB)"
        print(
            f"  {point[0]:>9,}  {point[1]:<6} {point[2]:<6} {rates[point]:>8,.0f}  "
            f"{peak:>6.1f} MB{flag}"
        )
    for form in ("each", "matrix"):
        rate = rates.get((100_000, form, "sqlite"))
        if rate is not None:
            verdict = "ok" if rate >= RATE_TARGET else "MISSED"
            print(
                f"  100k {form}, sqlite: {rate:,.0f} jobs/s (target >= {RATE_TARGET:,}: {verdict})"
            )
    big, base = rates.get((1_000_000, "matrix", "memory")), rates.get((100_000, "matrix", "memory"))
    if big is not None and base is not None:
        verdict = "ok" if big >= 0.8 * base else "MISSED"
        print(f"  1M matrix, memory: {big / base:.2f}x the 100k rate (target >= 0.8x: {verdict})")


if __name__ == "__main__":
    main()
