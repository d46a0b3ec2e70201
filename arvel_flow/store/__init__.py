"""Stores: run state, batch counters, failed jobs, locks and rate-limit windows."""

from arvel_flow.store.contracts import (
    FINAL_STATES,
    BatchCounters,
    FailedJob,
    RunRecord,
    StepRecord,
    StoreContract,
)
from arvel_flow.store.memory import MemoryStore

__all__ = [
    "FINAL_STATES",
    "BatchCounters",
    "FailedJob",
    "MemoryStore",
    "RunRecord",
    "StepRecord",
    "StoreContract",
]
