"""The front door: `start`, `Run.wait` / `Run.events`, `run` and `resume`, embedded."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

import arvel_flow
from arvel_flow import ConfigError, QueueSettings
from arvel_flow.errors import BackendError, ImportTargetError, RunNotFoundError
from arvel_flow.queue.events import Event, EventBus
from arvel_flow.store import open_store
from tests.unit.queue import observer_targets
from tests.unit.queue.flow_jobs import JOURNAL

pytestmark = pytest.mark.timeout(20)

CHAIN = """\
version: 1
name: front-door
vars:
  first: a
queue:
  store: {store}
pipeline:
  chain:
    - id: a
      job: tests.unit.queue.flow_jobs:Step
      with: {{name: "${{vars.first}}"}}
    - id: b
      job: tests.unit.queue.flow_jobs:Sleeper
      with: {{name: b, seconds: {seconds}}}
    - id: c
      job: tests.unit.queue.flow_jobs:Step
      with: {{name: c}}
"""


def write_chain(tmp_path: Path, *, store: str = "memory", seconds: float = 0.05) -> Path:
    """A chain a -> b (sleeps ``seconds``) -> c, its store named in its ``queue:``."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(CHAIN.format(store=store, seconds=seconds), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _fresh_journal() -> None:
    JOURNAL.reset()


async def test_run_runs_a_file_to_its_end_with_its_vars(tmp_path: Path) -> None:
    # Given a chain whose first step is named by a variable
    pipeline = write_chain(tmp_path)
    # When it is run in one call, the variable set
    result = await arvel_flow.run(pipeline, vars={"first": "x"})
    # Then every step ran, in order, and the result says so
    assert result.ok
    assert result.progress == (3, 3)
    assert [entry for entry in JOURNAL.entries if entry != "b slept"] == ["x", "c"]


async def test_start_returns_a_recorded_run_whose_wait_gives_its_result(tmp_path: Path) -> None:
    # Given a file whose store is a sqlite file
    state = tmp_path / "state.db"
    pipeline = write_chain(tmp_path, store=f"sqlite:{state}", seconds=0.2)
    # When it is started
    async with await arvel_flow.start(pipeline) as run:
        # Then the run is in the store at once, and wait gives its result
        record = await run.store.get_run(run.id)
        assert record is not None
        assert record.name == "front-door"
        result = await run.wait()
    # And the file holds it (sqlite: it can be resumed, listed, shown)
    assert state.is_file()
    assert (result.run_id, result.status, result.progress) == (run.id, "succeeded", (3, 3))


async def test_events_follow_the_run_until_it_ends(tmp_path: Path) -> None:
    # Given a started run whose middle step takes a while
    pipeline = write_chain(tmp_path, seconds=0.2)
    async with await arvel_flow.start(pipeline) as run:
        # When its events are read
        events = [event async for event in run.events()]
        result = await run.wait()
    # Then they end with the run's end, all of this run
    assert events[-1].event == "run.finished"
    assert events[-1].data["status"] == "succeeded"
    assert {event.run_id for event in events} == {run.id}
    assert ("job.succeeded", "c") in [(event.event, event.step) for event in events]
    assert result.ok


async def test_a_bus_given_to_start_sees_every_event_from_the_first(tmp_path: Path) -> None:
    # Given a bus with a listener
    seen: list[Event] = []
    bus = EventBus(seen.append)
    # When a run is started on it
    result = await arvel_flow.run(write_chain(tmp_path), events=bus)
    # Then the listener saw the run from its start to its end
    assert [seen[0].event, seen[-1].event] == ["run.started", "run.finished"]
    assert result.ok


async def test_the_settings_given_beat_the_file(tmp_path: Path) -> None:
    # Given a file that names a sqlite store
    state = tmp_path / "state.db"
    pipeline = write_chain(tmp_path, store=f"sqlite:{state}")
    # When it is run with a memory store chosen in Python
    result = await arvel_flow.run(pipeline, settings=QueueSettings(store="memory"))
    # Then the run went to memory: the file's store was never created
    assert result.ok
    assert not state.exists()


async def test_closing_a_running_run_interrupts_it_and_resume_finishes_it(
    tmp_path: Path,
) -> None:
    # Given a run in a sqlite store, interrupted while its middle step sleeps
    settings = QueueSettings(store=f"sqlite:{tmp_path / 'state.db'}")
    pipeline = write_chain(tmp_path, seconds=0.3)
    run = await arvel_flow.start(pipeline, settings=settings)
    await asyncio.sleep(0.1)
    run.interrupt()
    interrupted = await run.wait()
    await run.close()
    assert interrupted.status == "interrupted"
    assert "c" not in JOURNAL.entries
    # When it is resumed (no file needed: the store holds its plan)
    async with await arvel_flow.resume(run.id, settings=settings) as resumed:
        result = await resumed.wait()
    # Then it finishes without running its finished steps again
    assert result.status == "succeeded"
    assert JOURNAL.entries == ["a", "b slept", "c"]


async def test_closing_before_the_end_leaves_the_run_interrupted(tmp_path: Path) -> None:
    # Given a started run in a sqlite store
    state = tmp_path / "state.db"
    run = await arvel_flow.start(write_chain(tmp_path, store=f"sqlite:{state}", seconds=0.3))
    # When the handle is closed before the run ends
    await run.close()
    # Then the run is left interrupted, ready to be resumed
    reader = open_store(f"sqlite:{state}")
    try:
        record = await reader.get_run(run.id)
    finally:
        await reader.close()
    assert record is not None
    assert record.status == "interrupted"


async def test_no_signal_handler_is_installed_unless_asked(tmp_path: Path) -> None:
    # Given a run started by an application that owns its signals
    before = signal.getsignal(signal.SIGINT)
    async with await arvel_flow.start(write_chain(tmp_path, seconds=0.2)) as run:
        # When the run is being followed
        await asyncio.sleep(0.05)
        # Then SIGINT is still the application's
        assert signal.getsignal(signal.SIGINT) is before
        await run.wait()


async def test_signal_handlers_are_installed_when_asked_and_removed_after(
    tmp_path: Path,
) -> None:
    before = signal.getsignal(signal.SIGINT)
    async with await arvel_flow.start(
        write_chain(tmp_path, seconds=0.2), handle_signals=True
    ) as run:
        await asyncio.sleep(0.05)
        assert signal.getsignal(signal.SIGINT) is not before
        await run.wait()
    assert signal.getsignal(signal.SIGINT) is before


async def test_the_sync_driver_runs_inline(tmp_path: Path) -> None:
    result = await arvel_flow.run(write_chain(tmp_path), settings=QueueSettings(driver="sync"))
    assert result.ok
    assert JOURNAL.entries == ["a", "b slept", "c"]


async def test_the_null_driver_is_refused_with_one_clear_issue(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        await arvel_flow.start(write_chain(tmp_path), settings=QueueSettings(driver="null"))
    assert [issue.path for issue in raised.value.issues] == ["queue.driver"]
    assert "runs nothing" in str(raised.value)


async def test_an_invalid_file_raises_its_issues_and_runs_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("version: 1\nname: bad\npipeline:\n  chain: []\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        await arvel_flow.run(path)
    assert JOURNAL.entries == []


async def test_resuming_an_unknown_run_says_so(tmp_path: Path) -> None:
    settings = QueueSettings(store=f"sqlite:{tmp_path / 'state.db'}")
    with pytest.raises(RunNotFoundError):
        await arvel_flow.resume("nope", settings=settings)


LIMITED = """\
version: 1
name: limited
queue:
  store: {store}
  concurrency: 2
pipeline:
  batch:
    - job: tests.unit.queue.flow_jobs:Step
      with: {{hold: 0.1}}
      each: [{items}]
"""


async def interrupted_limited_run(tmp_path: Path) -> tuple[str, QueueSettings]:
    """A run of 12 jobs its file allows two at once, interrupted after a few; its id."""
    settings = QueueSettings(store=f"sqlite:{tmp_path / 'state.db'}")
    items = ", ".join(f"{{name: s{i:02d}}}" for i in range(12))
    pipeline = tmp_path / "limited.yaml"
    pipeline.write_text(LIMITED.format(store="memory", items=items), encoding="utf-8")
    run = await arvel_flow.start(pipeline, settings=settings)
    await asyncio.sleep(0.25)
    run.interrupt()
    assert (await run.wait()).status == "interrupted"
    await run.close()
    JOURNAL.reset()
    return run.id, settings


async def test_resume_keeps_the_concurrency_the_run_was_started_with(tmp_path: Path) -> None:
    # Given a run its file allows two jobs at once, interrupted with jobs left
    run_id, settings = await interrupted_limited_run(tmp_path)
    # When it is resumed from Python (no file)
    async with await arvel_flow.resume(run_id, settings=settings) as resumed:
        result = await resumed.wait()
    # Then the rest ran, never more than two at once
    assert result.status == "succeeded"
    assert len(JOURNAL.entries) >= 4
    assert JOURNAL.max_running == 2


async def test_settings_given_to_resume_override_the_pinned_ones_and_are_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a run its file allows two jobs at once, interrupted with jobs left
    run_id, settings = await interrupted_limited_run(tmp_path)
    # When it is resumed with a concurrency of 8 chosen in Python
    chosen = QueueSettings(store=settings.store, concurrency=8)
    with caplog.at_level("INFO", logger="arvel_flow.launch.runs"):
        async with await arvel_flow.resume(run_id, settings=chosen) as resumed:
            result = await resumed.wait()
    # Then more than two ran at once, and the change is said
    assert result.status == "succeeded"
    assert JOURNAL.max_running > 2
    assert "resuming with concurrency 8 (was 2)" in caplog.text


async def test_a_failure_no_one_waited_for_is_raised_by_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a started run whose store fails when the run finishes
    run = await arvel_flow.start(write_chain(tmp_path))

    async def broken(*args: object, **kwargs: object) -> None:
        raise BackendError("memory", "the store is gone")

    monkeypatch.setattr(run.store, "set_run_status", broken)
    # When it is closed without anyone awaiting wait() or follow()
    await asyncio.sleep(0.3)
    # Then close raises the failure rather than dropping it
    with pytest.raises(BackendError, match="the store is gone"):
        await run.close()
    # And only once: a second close has nothing more to say
    await run.close()


OBSERVERS = "tests.unit.queue.observer_targets"


@pytest.fixture
def _no_events_seen() -> None:
    observer_targets.SEEN.clear()


@pytest.mark.usefixtures("_no_events_seen")
@pytest.mark.parametrize("named_in", ["file", "environment"])
async def test_an_observer_of_the_file_or_the_environment_gets_every_event_of_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named_in: str
) -> None:
    # Given an observer named by the file's observers: or by ARVEL_FLOW_OBSERVERS
    pipeline = write_chain(tmp_path)
    if named_in == "file":
        text = pipeline.read_text(encoding="utf-8")
        text = text.replace("pipeline:", f"observers:\n  - {OBSERVERS}:record\npipeline:")
        pipeline.write_text(text, encoding="utf-8")
    else:
        monkeypatch.setenv("ARVEL_FLOW_OBSERVERS", f"{OBSERVERS}:record")
    # When it is run through the Python API
    result = await arvel_flow.run(pipeline)
    # Then the observer got every event, the last included, by the time it returns
    assert result.ok
    seen = observer_targets.SEEN
    assert seen[0] == "run.started"
    assert seen[-1] == "run.finished"
    assert seen.count("job.succeeded") == 3


@pytest.mark.usefixtures("_no_events_seen")
async def test_an_observer_that_cannot_be_loaded_stops_start_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an allowlist that leaves the observer out
    pipeline = write_chain(tmp_path)
    monkeypatch.setenv("ARVEL_FLOW_OBSERVERS", f"{OBSERVERS}:record")
    settings = QueueSettings(allowed_modules=("tests.unit.queue.flow_jobs",))
    # When the run is started, Then it is refused, and no job ran
    with pytest.raises(ImportTargetError, match="not under the allowed modules"):
        await arvel_flow.start(pipeline, settings=settings)
    assert JOURNAL.entries == []
    assert observer_targets.SEEN == []
