"""The transports that run jobs in this process (inline, null, local) or kick them to Taskiq.

Broker transports live with their broker (`arvel_flow.brokers.<name>.transport`).
"""

from arvel_flow.queue.transports.inline import InlineTransport
from arvel_flow.queue.transports.kick import KickTransport
from arvel_flow.queue.transports.local import LocalTransport
from arvel_flow.queue.transports.null import NullTransport

__all__ = ["InlineTransport", "KickTransport", "LocalTransport", "NullTransport"]
