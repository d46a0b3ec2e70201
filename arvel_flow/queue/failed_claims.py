"""Claims on failed jobs: each record is retried once, however many retries run at once.

Before retrying a failed-jobs record, a retrier claims it: a lock in the store's own
`LockContract` (``SET NX PX`` in Redis, one ``BEGIN IMMEDIATE`` transaction in sqlite),
owned by this retrier and renewed while the retry runs. Having won the claim, it reads
the record again: a record that is gone was retried meanwhile by someone else, whose
claim it outlived. The retry removes the record (or records the job's new failure in
its place) before the claim is released, so no two retriers ever run one record. The
claim of a retrier that crashed expires after `CLAIM_SECONDS`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from arvel_flow.errors import ClaimLostError
from arvel_flow.queue.lease import LeaseKeeper
from arvel_flow.store.contracts import FailedJob, StoreContract

T = TypeVar("T")

CLAIM_SECONDS = 30.0
"""How long a claim lasts unless renewed (every third of that, while the retry runs)."""


def claim_key(failed_id: str) -> str:
    """The lock key of the claim on one failed job (apart from any key a pipeline names)."""
    return f"arvel-flow/failed-retry/{failed_id}"


async def claim_failed(
    store: StoreContract, failed_id: str, owner: str, seconds: float = CLAIM_SECONDS
) -> FailedJob | None:
    """Claim a failed job for one retry: its record when ``owner`` won the claim.

    None when another retrier holds the claim, or the record is gone (retried already).
    """
    lock = store.lock()
    if not await lock.acquire(claim_key(failed_id), owner, seconds):
        return None
    try:
        record = await store.get_failed(failed_id)
    except BaseException:
        await lock.release(claim_key(failed_id), owner)  # not held for its 30 s: let go
        raise
    if record is None:
        await lock.release(claim_key(failed_id), owner)
    return record


async def retry_claimed(
    store: StoreContract,
    failed_id: str,
    retry: Callable[[FailedJob], Awaitable[T]],
    *,
    seconds: float = CLAIM_SECONDS,
) -> T | None:
    """Claim ``failed_id``, run ``retry`` on its record while keeping the claim, release it.

    Returns what ``retry`` returned, or None when the claim went to someone else (or the
    record is gone). ``retry`` must remove the record (or replace it) before it returns.

    Raises:
        ClaimLostError: The claim could not be renewed in time and another retrier took
            it; the retry was cancelled.
    """
    owner = uuid.uuid4().hex
    record = await claim_failed(store, failed_id, owner, seconds)
    if record is None:
        return None
    lock, key = store.lock(), claim_key(failed_id)

    async def renew() -> bool:
        if not await lock.extend(key, owner, seconds):
            raise ClaimLostError(key)
        return True

    keeper = LeaseKeeper(renew, seconds / 3, name=f"claim on failed job {failed_id}")
    keeper.start()
    try:
        return await keeper.guard(retry(record))
    finally:
        await keeper.stop()
        await lock.release(key, owner)
