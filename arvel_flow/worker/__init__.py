"""Workers for distributed runs: ``arvel-flow worker``.

`Worker` reads the messages of its queues, runs each job through the same
`JobRunner` as every driver, and advances runs through the shared store;
`arvel_flow.wiring.make_worker` builds one from `QueueSettings`.
"""

from arvel_flow.errors import DeliveryLimitError
from arvel_flow.worker.worker import Worker, WorkerOptions

__all__ = ["DeliveryLimitError", "Worker", "WorkerOptions"]
