"""A module no test worker may import: importing it leaves a marker file behind."""

from __future__ import annotations

import os
from pathlib import Path

marker = os.environ.get("ARVEL_FLOW_TEST_MARKER")
if marker:
    Path(marker).write_text("imported\n")


async def handle() -> None:
    """Would run, if it were ever imported."""
