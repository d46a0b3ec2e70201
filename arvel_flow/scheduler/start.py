"""Starting the run of a tick: a pipeline file, the trigger's ``set:``, the tick on it."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.launch import Run, begin_run, compile_file
from arvel_flow.launch.pinned import pin
from arvel_flow.queue.events import EventBus
from arvel_flow.scheduler.triggers import Trigger
from arvel_flow.settings import QueueSettings
from arvel_flow.wiring import make_queue


async def start_tick(
    trigger: Trigger,
    at: float,
    run_id: str,
    flags: Mapping[str, Any],
    events: EventBus | None = None,
) -> Run:
    """Start ``run_id``, the run of ``trigger``'s tick ``at``; returns once dispatched.

    ``events`` hears the run's events said in this process (a fresh bus by default).

    ``flags`` are the scheduler's settings (its store, a broker); the file's ``queue:``
    section stands under them, as for ``arvel-flow run``.

    Raises:
        ConfigError: The file is invalid, or its driver is null (it runs nothing).
        BackendError: The store or broker cannot be reached.
    """
    plan, section = compile_file(trigger.source, trigger.set)
    settings = QueueSettings.resolve(section, dict(flags))
    if settings.driver == "null":
        raise ConfigError(
            [ConfigIssue("the null driver runs nothing: a trigger cannot start a run of it")]
        )
    plan = dataclasses.replace(pin(plan, settings), trigger=trigger.key, scheduled_at=at)
    queue = make_queue(settings, events=events or EventBus())
    try:
        return await begin_run(queue, plan, run_id, settings)
    except BaseException:
        await queue.close()
        raise


def check_triggers(triggers: list[Trigger]) -> None:
    """Compile each trigger's file with its ``set:``, strictly (job classes imported).

    A scheduler checks this when it starts or reloads, so that a bad file is reported
    then, not at 3 in the morning, and the first tick does not pay for the imports.

    Raises:
        ConfigError: Every problem found, each with its file and position.
    """
    issues: list[ConfigIssue] = []
    for trigger in triggers:
        try:
            compile_file(trigger.source, trigger.set)
        except ConfigError as error:
            issues += [issue for issue in error.issues if issue not in issues]
    if issues:
        raise ConfigError(issues)
    # The queue a run needs is imported now, once, rather than at the first tick.
    importlib.import_module("arvel_flow.queue.drivers.taskiq")
