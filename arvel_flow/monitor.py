"""What ``arvel-flow top`` shows: one `Snapshot` of a deployment, read from its store and broker.

Collection only; the command renders it (`arvel_flow.cli.top_render`). Workers come from the
Redis broker's heartbeat sets (a worker's name is ``host:pid:suffix``), queues from
`read_queues` (the same reading as the queue metrics), runs in progress and recent
failures from the store, their progress computed as ``status`` computes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis

from arvel_flow.brokers.redis.depth import read_queues
from arvel_flow.brokers.redis.keys import StreamKeys
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


@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue's ready messages (depth) and the age of the oldest of them (lag, seconds)."""

    name: str
    depth: int
    lag: float


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
    """A deployment at ``taken_at``; ``workers`` and ``queues`` are empty without a broker."""

    taken_at: float
    workers: tuple[WorkerView, ...]
    queues: tuple[QueueView, ...]
    runs: tuple[RunView, ...]
    failures: tuple[FailureView, ...]


async def take_snapshot(
    store: StoreContract,
    broker: Redis | None,
    keys: StreamKeys,
    *,
    now: float,
    heartbeat_timeout: float,
    queues: Sequence[str] = (),
) -> Snapshot:
    """Read one `Snapshot`; ``queues`` (when given) keeps only those queues and their workers."""
    workers: tuple[WorkerView, ...] = ()
    queue_views: tuple[QueueView, ...] = ()
    if broker is not None:
        workers, queue_views = await asyncio.to_thread(
            _read_broker, broker, keys, now, heartbeat_timeout, tuple(queues)
        )
    return Snapshot(
        taken_at=now,
        workers=workers,
        queues=queue_views,
        runs=await _running(store),
        failures=tuple(_failure(record) for record in await store.list_failed(RECENT_FAILURES)),
    )


def snapshot_document(snapshot: Snapshot) -> dict[str, Any]:
    """``top --format json``: the snapshot as JSON-ready data."""
    return asdict(snapshot)


def _read_broker(
    client: Redis, keys: StreamKeys, now: float, timeout: float, only: tuple[str, ...]
) -> tuple[tuple[WorkerView, ...], tuple[QueueView, ...]]:
    clock: Callable[[], float] = lambda: now  # noqa: E731 - the snapshot's one time
    queue_views = tuple(
        QueueView(name, int(depth), lag)
        for name, depth, lag in read_queues(client, keys, clock)
        if not only or name in only
    )
    names = only or tuple(view.name for view in queue_views)
    beats: dict[str, tuple[float, list[str]]] = {}
    for queue in names:
        rows: Any = client.zrange(keys.consumers(queue), 0, -1, withscores=True)
        for raw, score in rows:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            last, seen_in = beats.get(name, (0.0, []))
            seen_in.append(queue)
            beats[name] = (max(last, float(score) / 1000), seen_in)
    workers = tuple(
        _worker(name, last, tuple(seen_in), now, timeout, _load(client, keys, name))
        for name, (last, seen_in) in sorted(beats.items())
    )
    return workers, queue_views


def _load(client: Redis, keys: StreamKeys, name: str) -> tuple[int | None, int | None]:
    """Worker ``name``'s concurrency and running jobs, from the hash its beats write."""
    fields: Any = client.hmget(keys.worker(name), ["concurrency", "running"])
    concurrency, running = (None if value is None else int(value) for value in fields)
    return concurrency, running


def _worker(
    name: str,
    last: float,
    queues: tuple[str, ...],
    now: float,
    timeout: float,
    load: tuple[int | None, int | None],
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
        concurrency=load[0],
        running=load[1],
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
