"""The pytest plugin: its fixtures work with no configuration, in sync, pytest-asyncio
and anyio tests, and loading it costs nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _jobs_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner runs are fresh processes, as a user's are: pytest loads the plugin from
    # its entry point there (in-process, arvel_flow would be imported already). They
    # import the test jobs from this repository.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


TESTS = """
import pytest

from arvel_flow.queue.drivers import SyncQueue
from arvel_flow.testing import FakeQueue
from tests.unit.testing.jobs import Flaky, ImportRows


def test_sync(fake_queue):
    assert isinstance(fake_queue, FakeQueue)
    fake_queue.assert_nothing_dispatched()


@pytest.mark.asyncio
async def test_pytest_asyncio(fake_queue):
    await fake_queue.dispatch(ImportRows(path="a.csv"))
    fake_queue.assert_dispatched(ImportRows, count=1)
    assert ImportRows.runs == []


@pytest.mark.anyio
async def test_anyio(fake_queue):
    await fake_queue.later(30, ImportRows(path="b.csv"))
    fake_queue.assert_dispatched_later(ImportRows, delay=30)


@pytest.mark.asyncio
async def test_sync_queue_runs_jobs_and_waits_for_nothing(sync_queue):
    Flaky.attempts.clear()
    assert isinstance(sync_queue, SyncQueue)
    await sync_queue.dispatch(Flaky(failures=2))
    assert Flaky.attempts == [1, 2, 3]
    assert sync_queue.clock.sleeps == [3600, 3600]


def test_each_test_gets_its_own_fake_queue(fake_queue):
    fake_queue.assert_nothing_dispatched()
"""


def test_the_fixtures_work_with_no_configuration(pytester: pytest.Pytester) -> None:
    # Given a project with tests that use the fixtures, and no conftest or ini
    pytester.makepyfile(test_app=TESTS)
    # When pytest runs them
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    # Then they pass: the sync one, the pytest-asyncio ones and the anyio one
    result.assert_outcomes(passed=5)


def test_a_failed_assertion_reads_clearly_in_the_report(pytester: pytest.Pytester) -> None:
    # Given a test whose expected job was not dispatched
    pytester.makepyfile(
        test_app="""
import pytest
from tests.unit.testing.jobs import ImportRows, Report

@pytest.mark.asyncio
async def test_import(fake_queue):
    await fake_queue.dispatch(Report(title="x"))
    fake_queue.assert_dispatched(ImportRows)
"""
    )
    # When pytest runs it
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    # Then it fails with the message: what was expected, what was dispatched instead
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*AssertionError: expected ImportRows to be dispatched, but it was not",
            "E*dispatched:",
            "E*  - Report(title='x')",
        ]
    )


def test_a_project_that_does_not_use_it_is_left_alone(pytester: pytest.Pytester) -> None:
    # Given a project with its own fixture of the same name, under strict warnings
    pytester.makeconftest("import pytest\n\n@pytest.fixture\ndef fake_queue():\n    return 42\n")
    pytester.makepyfile(test_app="def test_own(fake_queue):\n    assert fake_queue == 42\n")
    # (pytest-asyncio warns, as an error here, when its loop scope is left unset)
    pytester.makeini(
        "[pytest]\nfilterwarnings = error\nasyncio_default_fixture_loop_scope = function\n"
    )
    # When pytest runs, Then its own fixture wins and nothing warns
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, warnings=0)


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    # Given a fresh interpreter
    code = (
        "import sys, arvel_flow.testing.plugin; "
        "print(sorted(m for m in ('pydantic', 'taskiq', 'yaml', 'rich') if m in sys.modules))"
    )
    # When the plugin module is imported (pytest does so for every run)
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    # Then none of the heavy dependencies came with it
    assert output.stdout.strip() == "[]"


def test_the_plugin_is_registered_for_pytest() -> None:
    # Given the installed package's entry points
    from importlib.metadata import entry_points

    # Then pytest finds the plugin under the pytest11 group
    plugins = {point.name: point.value for point in entry_points(group="pytest11")}
    assert plugins["arvel_flow"] == "arvel_flow.testing.plugin"


def test_the_readme_example_passes_without_configuration(pytester: pytest.Pytester) -> None:
    # Given the example the README shows, run with an empty configuration (not ours)
    ini = pytester.makeini("[pytest]\n")
    example = ROOT / "examples" / "test_with_fakes.py"
    # When pytest runs it, Then every test passes
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-c", str(ini), "--rootdir", str(pytester.path), str(example)
    )
    result.assert_outcomes(passed=5)
