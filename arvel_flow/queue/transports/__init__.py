"""The transports that run jobs in this process (inline, null, local) or kick them to Taskiq.

Broker transports live with their broker (`arvel_flow.brokers.<name>.transport`).
"""

from typing import TYPE_CHECKING

from arvel_flow.lazy import lazy_exports
from arvel_flow.queue.transports.inline import InlineTransport
from arvel_flow.queue.transports.local import LocalTransport
from arvel_flow.queue.transports.null import NullTransport

if TYPE_CHECKING:
    from arvel_flow.queue.transports.kick import KickTransport

__all__ = ["InlineTransport", "KickTransport", "LocalTransport", "NullTransport"]


# Imports Taskiq (and aiohttp): only for a Taskiq broker, not every start-up.
__getattr__, __dir__ = lazy_exports(__name__, {"KickTransport": "arvel_flow.queue.transports.kick"})
