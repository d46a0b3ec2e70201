"""Scheduled pipelines: triggers, their next fire times, the tick claim, the loop.

``triggers`` computes fire times and due ticks as pure functions; ``files`` reads the
triggers of pipeline files; ``claim`` decides a tick (overlap) and claims it in the
store, exactly once among schedulers sharing it; ``loop`` is the long-running
`Scheduler` (and the one-shot `tick`). It starts runs through `arvel_flow.launch`.
"""

from __future__ import annotations

from arvel_flow.scheduler.files import load_triggers
from arvel_flow.scheduler.loop import Scheduler
from arvel_flow.scheduler.triggers import Trigger, compute_due, compute_next, iter_fire_times

__all__ = [
    "Scheduler",
    "Trigger",
    "compute_due",
    "compute_next",
    "iter_fire_times",
    "load_triggers",
]
