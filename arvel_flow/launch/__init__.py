"""Launching runs: the front door for Python callers, and what ``arvel-flow run`` is a shell over.

`start` (a `Run` handle), `run` (its result), `resume` and `begin_run` (beginning a
run as the settings say, for the scheduler too) live in `arvel_flow.launch.runs`;
`Launcher` follows one run on a queue; `compile_file` turns a pipeline file into the
plan a run stores.
"""

from __future__ import annotations

from arvel_flow.launch.files import compile_file, describe_drift, file_digest
from arvel_flow.launch.launcher import Launcher, Outcome
from arvel_flow.launch.runs import Run, begin_run, resume, run, start

__all__ = [
    "Launcher",
    "Outcome",
    "Run",
    "begin_run",
    "compile_file",
    "describe_drift",
    "file_digest",
    "resume",
    "run",
    "start",
]
