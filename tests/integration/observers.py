"""An observer a worker loads through ``ARVEL_FLOW_OBSERVERS`` in the integration tests."""

from __future__ import annotations

import json
import os
from typing import Any


def write_event(event: Any) -> None:
    """Appends ``event`` as one JSON line to the file ``OBSERVED`` names."""
    fd = os.open(os.environ["OBSERVED"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(event.to_dict()) + "\n").encode())
    finally:
        os.close(fd)
