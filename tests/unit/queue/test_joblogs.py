"""Log records of a running job become ``job.log`` events of its attempt (#10 §5)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from arvel_flow.queue.events import Event, EventBus
from arvel_flow.queue.job import Job
from arvel_flow.queue.joblogs import BURST, MAX_MESSAGE, capture_job_logs
from arvel_flow.queue.runner import JobRunner
from tests.unit.queue.flow_harness import T0, FakeClock

pytestmark = pytest.mark.timeout(10)

LOGGER = "tests.unit.queue.chatty"


class Chatty(Job):
    """Logs ``lines`` WARNING lines (quoting its password) and one INFO line."""

    lines: int = 1
    password: str = "pw-hunter2-long"
    size: int = 10

    async def handle(self) -> None:
        log = logging.getLogger(LOGGER)
        log.info("starting")
        for index in range(self.lines):
            log.warning("line %d with %s %s", index, self.password, "x" * self.size)


class Outside(logging.Handler):
    """Collects the records that were not a job's."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def outside() -> Iterator[Outside]:
    handler = Outside()
    with capture_job_logs(logging.INFO, handler):
        yield handler


def listened() -> tuple[JobRunner, list[Event]]:
    seen: list[Event] = []
    runner = JobRunner(events=EventBus(seen.append), clock=FakeClock())
    return runner, seen


def logs(events: list[Event]) -> list[Event]:
    return [event for event in events if event.event == "job.log"]


async def test_a_record_in_a_job_is_a_job_log_event_of_its_attempt(outside: Outside) -> None:
    # Given a runner someone listens to
    runner, seen = listened()
    # When a job logs an INFO and a WARNING line
    await runner.execute(Chatty())
    # Then each is a job.log event with the attempt, level, logger and message, secret masked
    said = [(e.job, e.attempt, e.time, e.data) for e in logs(seen)]
    job = f"{__name__}:Chatty"
    assert said == [
        (job, 1, T0, {"level": "INFO", "logger": LOGGER, "message": "starting"}),
        (
            job,
            1,
            T0,
            {"level": "WARNING", "logger": LOGGER, "message": "line 0 with *** xxxxxxxxxx"},
        ),
    ]
    # And none went to the handler of records outside jobs
    assert outside.records == []


async def test_records_under_the_level_are_not_said() -> None:
    # Given capture at WARNING
    runner, seen = listened()
    with capture_job_logs(logging.WARNING, Outside()):
        # When a job logs INFO and WARNING
        await runner.execute(Chatty())
    # Then only the WARNING is said
    assert [e.data["level"] for e in logs(seen)] == ["WARNING"]


async def test_a_record_outside_any_job_goes_where_it_went(outside: Outside) -> None:
    # Given capture installed
    # When code outside any job logs a warning and an info line
    logging.getLogger(LOGGER).warning("outside")
    logging.getLogger(LOGGER).info("quiet")
    # Then the warning goes to the outside handler, the info line nowhere
    assert [r.getMessage() for r in outside.records] == ["outside"]


async def test_with_no_listener_a_job_record_goes_where_it_went(outside: Outside) -> None:
    # Given a runner no one listens to
    runner = JobRunner(clock=FakeClock())
    # When a job logs
    await runner.execute(Chatty())
    # Then its warning went outside, as it did before any capture
    assert [r.getMessage() for r in outside.records] == ["line 0 with pw-hunter2-long xxxxxxxxxx"]


async def test_a_job_logging_in_a_loop_is_cut_with_a_note_of_how_many_lines(
    outside: Outside,
) -> None:
    # Given a job that logs far more lines than the burst, at one instant
    runner, seen = listened()
    # When it runs
    await runner.execute(Chatty(lines=BURST + 500))
    # Then the burst is said, then one line says how many were dropped
    said = logs(seen)
    assert len(said) == BURST + 1
    assert said[-1].data == {
        "level": "WARNING",
        "logger": "arvel_flow",
        "message": "501 log lines dropped (over 50 a second)",
    }


async def test_a_long_message_is_cut(outside: Outside) -> None:
    # Given a job logging one huge line
    runner, seen = listened()
    # When it runs
    await runner.execute(Chatty(size=MAX_MESSAGE * 3))
    # Then the message is cut, saying how much was left out
    message = logs(seen)[-1].data["message"]
    assert len(message) < MAX_MESSAGE + 50
    assert message.endswith(" more characters)")


async def test_a_listener_that_logs_does_not_loop_back(outside: Outside) -> None:
    # Given a listener that logs each event it gets
    seen: list[Event] = []

    def chatty_listener(event: Event) -> None:
        seen.append(event)
        if event.event == "job.log":
            logging.getLogger("listener").warning("heard %s", event.data["message"])

    runner = JobRunner(events=EventBus(chatty_listener), clock=FakeClock())
    # When a job logs
    await runner.execute(Chatty())
    # Then its lines are said once each, and what the listener logged went outside
    assert len(logs(seen)) == 2
    assert [r.name for r in outside.records] == ["listener", "listener"]


def test_capture_restores_the_root_logger() -> None:
    # Given the root logger as it is
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    # When capture is installed and removed
    with capture_job_logs(logging.DEBUG):
        assert root.level == logging.DEBUG
    # Then the root logger is as it was
    assert (root.level, root.handlers) == (level, handlers)


class Threaded(Job):
    """Logs from a thread it starts (`asyncio.to_thread` carries the attempt's context)."""

    async def handle(self) -> None:
        await asyncio.to_thread(logging.getLogger(LOGGER).warning, "from a thread")


async def test_a_record_from_a_jobs_thread_is_said_on_the_loop(outside: Outside) -> None:
    # Given listeners that note the thread they are called on
    threads: list[int] = []
    seen: list[Event] = []

    def listener(event: Event) -> None:
        seen.append(event)
        threads.append(threading.get_ident())

    runner = JobRunner(events=EventBus(listener), clock=FakeClock())
    # When a job logs from a thread
    await runner.execute(Threaded())
    # Then the line is a job.log event of the attempt, delivered on the loop's thread
    assert [e.data["message"] for e in logs(seen)] == ["from a thread"]
    assert set(threads) == {threading.get_ident()}
