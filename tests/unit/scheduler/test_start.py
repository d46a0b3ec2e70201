"""Starting a tick's run: begun as ``arvel-flow run`` begins one, from the same settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arvel_flow.launch import Run
from arvel_flow.pipeline.schedule import TriggerSpec
from arvel_flow.queue.front import Queue
from arvel_flow.queue.plan import Plan
from arvel_flow.scheduler import Trigger
from arvel_flow.scheduler.start import start_tick

PIPELINE = """\
version: 1
name: nightly
queue: {store: memory}
pipeline:
  chain:
    - {id: one, job: tests.unit.scheduler.test_start:noop}
"""


async def noop() -> None:
    """The pipeline's one job."""


async def test_a_tick_s_run_begins_with_the_settings_heartbeat_timeout_observers_and_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pipeline file, and settings with their own timings
    source = tmp_path / "nightly.yaml"
    source.write_text(PIPELINE)
    trigger = Trigger.of(
        "nightly", str(source), TriggerSpec.model_validate({"id": "t", "every": "1h"})
    )
    begun: list[dict[str, Any]] = []

    async def begin(cls: type[Run], queue: Queue, plan: Plan, run_id: str, **options: Any) -> Run:
        begun.append({"run_id": run_id, "trigger": plan.trigger, **options})
        await queue.close()
        return None  # type: ignore[return-value]

    monkeypatch.setattr(Run, "begin", classmethod(begin))
    flags = {"heartbeat_timeout": 42.0, "outage_grace": 7.0, "allowed_modules": ("tests",)}
    # When the tick's run is started
    await start_tick(trigger, 1_800_000_000.0, "r1", flags)
    # Then it began with what the settings say, as a run started by hand would
    [options] = begun
    assert (options["run_id"], options["trigger"]) == ("r1", "nightly/t")
    assert options["heartbeat_timeout"] == 42.0
    assert options["outage"].grace == 7.0
    assert options["allowed"] == ("tests",)
