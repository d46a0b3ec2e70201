"""``--log-level``: which log records of a running job ``run`` and ``worker`` show.

Records a job emits at this level and up become ``job.log`` events (shown live, in
plain lines and as JSON); records outside any job go to stderr at WARNING and up.
"""

from __future__ import annotations

import logging

import click

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

LOG_LEVEL_OPTION = click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    help="The least level of a job's log records shown.",
)


def level_number(name: str) -> int:
    """``"warning"`` → `logging.WARNING` (``name`` is one of `LEVELS`, any case)."""
    return logging.getLevelNamesMapping()[name.upper()]
