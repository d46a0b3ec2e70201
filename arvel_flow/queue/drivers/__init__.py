"""Queue drivers: inline (sync), dry-run (null) and Taskiq."""

from arvel_flow.queue.drivers.null import NullQueue
from arvel_flow.queue.drivers.sync import SyncQueue
from arvel_flow.queue.drivers.taskiq import TaskiqQueue

__all__ = ["NullQueue", "SyncQueue", "TaskiqQueue"]
