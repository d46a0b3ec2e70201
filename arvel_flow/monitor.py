"""What ``arvel-flow top`` shows: one `Snapshot` of a deployment, read from its store and broker.

Collection only; the command renders it (`arvel_flow.cli.top_render`). Workers come from the
Redis heartbeat sets (a worker's name is ``host:pid:suffix``), queues from the broker's
``read_depths`` (the same reading as the queue metrics), runs in progress and recent
failures from the store, their progress computed as ``status`` computes it. A queue's
rate is measured between two snapshots (`compute_rates`), from the messages each
worker says, in its beats, it settled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from arvel_flow.brokers.depth import QueueDepth
from arvel_flow.brokers.redis.keys import StreamKeys
from arvel_flow.brokers.redis.presence import SETTLED_FIELD
from arvel_flow.queue.plan_json import plan_from_dict
from arvel_flow.queue.result import compute_result
from arvel_flow.store.contracts import FailedJob, StoreContract

RECENT_FAILURES = 5
"""How many failed jobs a snapshot holds, the most recent first."""

RUNS_READ = 200
"""How many of the most recent runs are looked through for those still running."""


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A worker seen in a heartbeat set: alive while its last beat is within the timeout."""

    name: str
    host: str
    pid: int | None
    queues: tuple[str, ...]
    heartbeat_age: float
    alive: bool
    concurrency: int | None = None
    """Jobs it runs at once; None when its beats do not say (an older worker)."""
    running: int | None = None
    """Jobs it ran at its last beat; None when its beats do not say."""
    settled: dict[str, int] | None = None
    """Messages it settled per queue since it started, as of its last beat; None when
    its beats do not say."""


DepthRead = Callable[[Sequence[str]], Awaitable[list[QueueDepth]]]
"""Reads the depth of the queues named (every queue the broker knows for none)."""


@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue's ready messages (depth), the age of the oldest of them (lag, seconds)
    and the messages its workers settled per second since the previous snapshot (rate).

    What the broker cannot tell is None (see `QueueDepth`); so is the rate of a first
    snapshot, which has nothing to be measured against.
    """

    name: str
    depth: int
    lag: float | None
    rate: float | None = None
    taken: int | None = None
    """Messages taken by workers and not acknowledged yet."""
    consumers: int | None = None
    """Connections consuming the queue (RabbitMQ says; the others: see the workers)."""


@dataclass(frozen=True, slots=True)
class RunView:
    """A run in progress: ``finished`` of its ``total`` jobs are done."""

    run_id: str
    name: str
    started_at: float
    finished: int
    total: int


@dataclass(frozen=True, slots=True)
class FailureView:
    """A job that failed for good."""

    failed_id: str
    job: str
    run_id: str | None
    exception: str
    message: str
    failed_at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A deployment at ``taken_at``; ``workers`` and ``queues`` are empty without a broker.

    ``workers_seen`` says whether workers could be seen at all: False when they beat
    into no Redis this snapshot reads (then an empty ``workers`` means "unknown", not
    "none").
    """

    taken_at: float
    workers: tuple[WorkerView, ...]
    queues: tuple[QueueView, ...]
    runs: tuple[RunView, ...]
    failures: tuple[FailureView, ...]
    workers_seen: bool = True


async def take_snapshot(
    store: StoreContract,
    *,
    now: float,
    heartbeat_timeout: float,
    depths: DepthRead | None = None,
    heartbeats: Redis | None = None,
    keys: StreamKeys | None = None,
    queues: Sequence[str] = (),
    previous: Snapshot | None = None,
) -> Snapshot:
    """Read one `Snapshot`.

    Args:
        store: Where runs and failed jobs are read.
        now: The snapshot's time (heartbeat ages and rates are measured to it; lags
            are the broker reader's own).
        heartbeat_timeout: Seconds of silence after which a worker is dead.
        depths: Reads the queues from the broker; None without a broker.
        heartbeats: The Redis the workers beat into (under ``keys``); None when they
            beat into none that can be read.
        keys: The Redis keys under the deployment's prefix.
        queues: Only these queues and the workers that read them (all when empty).
        previous: The snapshot before this one, which queue rates are measured against.
    """
    only = tuple(queues)
    depth_list = [] if depths is None else await depths(only)
    workers: tuple[WorkerView, ...] = ()
    if heartbeats is not None:
        names = only or tuple(depth.name for depth in depth_list)
        workers = await asyncio.to_thread(
            _read_workers, heartbeats, keys or StreamKeys(), names, now, heartbeat_timeout
        )
    rates: dict[str, float] = {}
    if previous is not None and now > previous.taken_at:
        rates = compute_rates(previous.workers, workers, now - previous.taken_at)
    return Snapshot(
        taken_at=now,
        workers=workers,
        queues=tuple(_queue(depth, rates, previous) for depth in depth_list),
        runs=await _running(store),
        failures=tuple(_failure(record) for record in await store.list_failed(RECENT_FAILURES)),
        workers_seen=heartbeats is not None or depths is None,
    )


def compute_rates(
    before: Sequence[WorkerView], after: Sequence[WorkerView], elapsed: float
) -> dict[str, float]:
    """Messages settled per second in each queue over the ``elapsed`` seconds between
    two readings of the workers: the sum of what each worker settled meanwhile.

    A worker new in ``after`` started since ``before`` (it beats once as it starts), so
    all it settled counts; one gone from ``after`` took its last counts with it.
    """
    earlier = {worker.name: worker.settled or {} for worker in before}
    totals: dict[str, int] = {}
    for worker in after:
        for queue, count in (worker.settled or {}).items():
            since = max(0, count - earlier.get(worker.name, {}).get(queue, 0))
            totals[queue] = totals.get(queue, 0) + since
    return {queue: total / elapsed for queue, total in totals.items()}


def _queue(depth: QueueDepth, rates: dict[str, float], previous: Snapshot | None) -> QueueView:
    # With a snapshot before, a queue no worker settled anything of ran at 0/s.
    rate = None if previous is None else rates.get(depth.name, 0.0)
    return QueueView(
        depth.name,
        depth.depth,
        depth.lag,
        rate=rate,
        taken=depth.taken,
        consumers=depth.consumers,
    )


def snapshot_document(snapshot: Snapshot) -> dict[str, Any]:
    """``top --format json``: the snapshot as JSON-ready data."""
    return asdict(snapshot)


def _read_workers(
    client: Redis, keys: StreamKeys, names: Sequence[str], now: float, timeout: float
) -> tuple[WorkerView, ...]:
    """Each worker that beat into the heartbeat set of one of the queues ``names``."""
    beats: dict[str, tuple[float, list[str]]] = {}
    for queue in names:
        rows: Any = client.zrange(keys.consumers(queue), 0, -1, withscores=True)
        for raw, score in rows:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            last, seen_in = beats.get(name, (0.0, []))
            seen_in.append(queue)
            beats[name] = (max(last, float(score) / 1000), seen_in)
    return tuple(
        _worker(name, last, tuple(seen_in), now, timeout, _load(client, keys, name))
        for name, (last, seen_in) in sorted(beats.items())
    )


def _load(client: Redis, keys: StreamKeys, name: str) -> _Load:
    """Worker ``name``'s concurrency, running jobs and settled messages, from the hash
    its beats write (each None when they do not say)."""
    raw: Any = client.hgetall(keys.worker(name))
    fields = {_text(key): int(value) for key, value in raw.items()}
    settled = {
        key.removeprefix(SETTLED_FIELD): count
        for key, count in fields.items()
        if key.startswith(SETTLED_FIELD)
    }
    return _Load(fields.get("concurrency"), fields.get("running"), settled if fields else None)


@dataclass(frozen=True, slots=True)
class _Load:
    concurrency: int | None
    running: int | None
    settled: dict[str, int] | None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _worker(
    name: str,
    last: float,
    queues: tuple[str, ...],
    now: float,
    timeout: float,
    load: _Load,
) -> WorkerView:
    host, _, rest = name.partition(":")
    pid_text = rest.partition(":")[0]
    age = max(0.0, now - last)
    return WorkerView(
        name=name,
        host=host,
        pid=int(pid_text) if pid_text.isdigit() else None,
        queues=queues,
        heartbeat_age=age,
        # A score of 0 marks a worker that left or was found dead.
        alive=last > 0 and age <= timeout,
        concurrency=load.concurrency,
        running=load.running,
        settled=load.settled,
    )


async def _running(store: StoreContract) -> tuple[RunView, ...]:
    views = []
    for run in await store.list_runs(RUNS_READ):
        if run.status != "running":
            continue
        plan = plan_from_dict(await store.load_plan(run.run_id))
        records = await store.get_steps(run.run_id)
        finished, total = compute_result(run.run_id, run.status, plan, records).progress
        views.append(RunView(run.run_id, run.name, run.created_at, finished, total))
    return tuple(views)


def _failure(record: FailedJob) -> FailureView:
    return FailureView(
        failed_id=record.id,
        job=record.job,
        run_id=record.run_id,
        exception=record.exception,
        message=record.message,
        failed_at=record.failed_at,
    )
