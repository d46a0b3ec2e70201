"""Workers for distributed runs: ``arvel-flow worker``.

`Worker` reads the streams of its queues, runs each job through the same
`JobRunner` as every driver, and advances runs through the shared store;
`make_worker` builds one from `QueueSettings`.
"""

from arvel_flow.errors import DeliveryLimitError
from arvel_flow.worker.build import make_worker
from arvel_flow.worker.worker import Worker, WorkerOptions

__all__ = ["DeliveryLimitError", "Worker", "WorkerOptions", "make_worker"]
