"""Job and run figures, counted from the events of the runner and the orchestration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from arvel_flow.queue.events import Event

_STATUSES = {
    "job.succeeded": "succeeded",
    "job.failed": "failed",
    "job.retrying": "retried",
    "job.released": "released",
    "job.duplicate": "duplicate",
}
"""The job events counted in ``arvel_flow_jobs_total``, by the status label they get."""

_MAX_OPEN = 100_000
"""Attempts whose start is remembered at once; beyond, the oldest are forgotten."""

_Attempt = tuple[str | None, str | None, int | None]


class MetricsListener:
    """An `EventBus` listener that turns events into Prometheus metrics in ``registry``.

    Labels are bounded: the job's class path (bounded by the allowlist), its queue and the
    pipeline's name; never a run id or a parameter.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Counter(
            "arvel_flow_jobs",
            "Job attempts that ended, by how they ended.",
            ["job", "queue", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "arvel_flow_job_duration_seconds",
            "Time from a job attempt's start to its end.",
            ["job", "queue"],
            registry=registry,
        )
        self.running = Gauge(
            "arvel_flow_jobs_running",
            "Job attempts running now.",
            ["queue"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.runs = Counter(
            "arvel_flow_runs",
            "Runs that finished, by pipeline name and outcome.",
            ["pipeline", "status"],
            registry=registry,
        )
        self._started: dict[_Attempt, float] = {}

    def __call__(self, event: Event) -> None:
        name = event.event
        if name == "run.finished":
            pipeline = str(event.data.get("name") or "")
            self.runs.labels(pipeline, str(event.data.get("status"))).inc()
            return
        queue = str(event.data.get("queue") or "default")
        key = (event.run_id, event.step, event.attempt)
        if name == "job.started":
            if len(self._started) >= _MAX_OPEN:
                del self._started[next(iter(self._started))]
            self._started[key] = event.time
            self.running.labels(queue).inc()
            return
        status = _STATUSES.get(name)
        if status is None or event.job is None:
            return
        self.jobs.labels(event.job, queue, status).inc()
        started = self._started.pop(key, None)
        if started is not None:
            self.running.labels(queue).dec()
            self.duration.labels(event.job, queue).observe(max(0.0, event.time - started))
