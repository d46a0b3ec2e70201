"""Workers for distributed runs: ``arvel-flow worker``.

`Worker` reads the messages of its queues through a broker's `Consumer`, runs each
job through the same `JobRunner` as every driver, and advances runs through the
shared store; `arvel_flow.wiring.make_worker` builds one from `QueueSettings`.
"""

from arvel_flow.errors import DeliveryLimitError
from arvel_flow.worker.consumer import Consumer, Delivery, Host
from arvel_flow.worker.options import WorkerOptions
from arvel_flow.worker.worker import Worker

__all__ = ["Consumer", "Delivery", "DeliveryLimitError", "Host", "Worker", "WorkerOptions"]
