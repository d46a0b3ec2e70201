"""`MetricsListener`: events in, Prometheus figures out (a registry, no server)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry

from arvel_flow.metrics.listener import MetricsListener
from arvel_flow.queue.events import Event, EventBus

JOB = "app.jobs:Import"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def bus(registry: CollectorRegistry) -> EventBus:
    return EventBus(MetricsListener(registry))


def job_event(name: str, time: float, *, step: str = "a", attempt: int = 1, **data: Any) -> Event:
    return Event(name, time, "run-1", step, JOB, attempt, {"queue": "imports", **data})


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_an_attempt_that_succeeds_is_counted_timed_and_no_longer_running(
    bus: EventBus, registry: CollectorRegistry
) -> None:
    bus.emit(job_event("job.started", 10.0))
    assert value(registry, "arvel_flow_jobs_running", queue="imports") == 1
    bus.emit(job_event("job.succeeded", 12.5))
    assert value(registry, "arvel_flow_jobs_running", queue="imports") == 0
    labels = {"job": JOB, "queue": "imports"}
    assert value(registry, "arvel_flow_jobs_total", **labels, status="succeeded") == 1
    assert value(registry, "arvel_flow_job_duration_seconds_count", **labels) == 1
    assert value(registry, "arvel_flow_job_duration_seconds_sum", **labels) == 2.5


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("job.failed", "failed"),
        ("job.retrying", "retried"),
        ("job.released", "released"),
        ("job.duplicate", "duplicate"),
    ],
)
def test_each_ending_has_its_status(
    bus: EventBus, registry: CollectorRegistry, event: str, status: str
) -> None:
    bus.emit(job_event(event, 1.0))
    bus.emit(job_event(event, 2.0, step="b"))
    total = value(registry, "arvel_flow_jobs_total", job=JOB, queue="imports", status=status)
    assert total == 2


def test_an_ending_without_a_start_leaves_running_and_durations_alone(
    bus: EventBus, registry: CollectorRegistry
) -> None:
    """A refused delivery fails without starting: no negative gauge, no duration."""
    bus.emit(job_event("job.failed", 1.0))
    assert value(registry, "arvel_flow_jobs_running", queue="imports") is None
    labels = {"job": JOB, "queue": "imports"}
    assert value(registry, "arvel_flow_job_duration_seconds_count", **labels) is None


def test_each_attempt_is_timed_from_its_own_start(
    bus: EventBus, registry: CollectorRegistry
) -> None:
    bus.emit(job_event("job.started", 0.0, attempt=1))
    bus.emit(job_event("job.retrying", 1.0, attempt=1))
    bus.emit(job_event("job.started", 5.0, attempt=2))
    bus.emit(job_event("job.succeeded", 8.0, attempt=2))
    labels = {"job": JOB, "queue": "imports"}
    assert value(registry, "arvel_flow_job_duration_seconds_sum", **labels) == 4.0
    assert value(registry, "arvel_flow_jobs_running", queue="imports") == 0


def test_runs_are_counted_by_pipeline_and_status(
    bus: EventBus, registry: CollectorRegistry
) -> None:
    bus.emit(Event("run.finished", 1.0, "run-1", data={"name": "etl", "status": "succeeded"}))
    bus.emit(Event("run.finished", 2.0, "run-2", data={"name": "etl", "status": "failed"}))
    bus.emit(Event("run.finished", 3.0, "run-3", data={"name": "etl", "status": "failed"}))
    assert value(registry, "arvel_flow_runs_total", pipeline="etl", status="succeeded") == 1
    assert value(registry, "arvel_flow_runs_total", pipeline="etl", status="failed") == 2


def test_no_label_holds_a_run_id_or_a_parameter(bus: EventBus, registry: CollectorRegistry) -> None:
    bus.emit(job_event("job.started", 0.0, secret_param="hunter2"))
    bus.emit(job_event("job.failed", 1.0, error="boom hunter2"))
    bus.emit(Event("run.finished", 1.0, "run-1", data={"name": "etl", "status": "failed"}))
    labels = {
        value
        for metric in registry.collect()
        for sample in metric.samples
        for value in sample.labels.values()
    }
    assert {JOB, "imports", "failed", "etl"} <= labels
    assert not {"run-1", "hunter2", "boom hunter2"} & labels
