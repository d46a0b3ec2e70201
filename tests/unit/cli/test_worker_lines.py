"""The worker's lines: Celery's format, and a job's log record as a line."""

from __future__ import annotations

import io
import logging
import re

from arvel_flow.cli.worker import event_level, format_event
from arvel_flow.cli.worker_lines import make_line_handler, say
from arvel_flow.queue.events import Event

LOG = Event(
    "job.log",
    0.0,
    "r1",
    "fetch",
    "myapp.jobs:Fetch",
    2,
    {"level": "WARNING", "logger": "myapp.jobs", "message": "disk\nfull"},
)


def test_a_line_has_time_level_and_process_first() -> None:
    # Given the worker's line handler writing to a buffer
    handler = make_line_handler(logging.WARNING)
    buffer = io.StringIO()
    handler.setStream(buffer)
    # When the worker says a line (at INFO, under the handler's level)
    say(handler, "worker w1: ready")
    # Then it is printed in Celery's form all the same
    assert re.fullmatch(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}: INFO/MainProcess\] worker w1: ready\n",
        buffer.getvalue(),
    )


def test_a_job_log_line_names_run_step_attempt_and_logger_on_one_line() -> None:
    # When a job's log record is formatted as a worker line
    line = format_event(LOG)
    # Then it names the run, step and attempt, and its newline cannot start a line
    assert line == "job.log run r1 fetch (attempt 2) myapp.jobs: disk\\nfull"


def test_a_job_log_line_keeps_the_records_level() -> None:
    assert event_level(LOG) == logging.WARNING
    assert event_level(Event("job.failed", 0.0)) == logging.ERROR
    assert event_level(Event("run.finished", 0.0)) == logging.INFO
