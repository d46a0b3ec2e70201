"""Forged messages on every broker: the worker's allowlist is a boundary, not a prefix check.

One worker per broker, allowed ``tests.integration.jobs`` and ``tests.integration.bait``
(the latter spelled with a trailing dot, which is normalised), receives every forgery
at once, then a legitimate job. Each forgery would leave a marker file (or a journal
entry under the marker's name) if it ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.envelope import Envelope, new_id
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.targets import JobRef
from arvel_flow.queue.wire import encode_message
from tests.integration.conftest import Cluster, every_broker, publish_raw
from tests.integration.jobs import Record

pytestmark = [pytest.mark.redis, pytest.mark.brokers, pytest.mark.slow]

JOBS = "tests.integration.jobs"
BAIT = "tests.integration.bait"
RECORD = f"{JOBS}:Record"
RATE_LIMIT = {"key": "k", "max_attempts": 9, "decay_seconds": 60}


@dataclass(frozen=True)
class Forgery:
    """A forged job, what its failed record must say, and the params that would harm."""

    target: str
    reason: str
    params: Callable[[Path], dict[str, object]]
    settings: dict[str, object] = field(default_factory=dict)


def shell(marker: Path) -> dict[str, object]:
    return {"cmd": f"touch {marker}"}


def python(marker: Path) -> dict[str, object]:
    return {"source": f"open({str(marker)!r}, 'w').close()"}


def record(marker: Path) -> dict[str, object]:
    return {"journal": str(marker), "tag": marker.name}


FORGERIES = [
    # attribute chains through another module, ':' and all-dots forms
    Forgery(f"{JOBS}:os.popen", "'os' in tests.integration.jobs is a module", shell),
    Forgery(f"{JOBS}.os.popen", "no module named 'tests.integration.jobs.os'", shell),
    Forgery(f"{JOBS}:asyncio.subprocess.create_subprocess_shell", "is a module", shell),
    Forgery(f"{JOBS}.asyncio.subprocess.create_subprocess_shell", "no module named", shell),
    # re-exports from an allowed module
    Forgery(f"{BAIT}:popen", "is os:popen, defined outside the allowed modules", shell),
    Forgery(f"{BAIT}.create_subprocess_shell", "defined outside the allowed modules", shell),
    # builtins, dunders, other modules, prefix tricks, malformed paths
    Forgery("eval", "a job is never a builtin", python),
    Forgery("exec", "a job is never a builtin", python),
    Forgery("os:system", "not under the allowed modules", lambda m: {"command": f"touch {m}"}),
    Forgery(f"{JOBS}:Record.__init__", "a name starting with '__'", record),
    Forgery(f"{JOBS}:write.__globals__", "a name starting with '__'", record),
    Forgery(f"{JOBS}x:Record", "not under the allowed modules", record),
    Forgery("tests.integration.forbidden:handle", "not under the allowed modules", record),
    Forgery("tests.integration.forbidden.handle", "not under the allowed modules", record),
    Forgery(f"{RECORD}\n", "not a dotted path of ASCII identifiers", record),
    Forgery("tests.integration.j\u043ebs:Record", "ASCII identifiers", record),  # Cyrillic o
    # a legitimate job with a forged middleware or retry policy: it must not run either
    Forgery(
        RECORD,
        "arvel_flow.queue.middleware:RateLimited, defined outside",
        record,
        {"middleware": [MiddlewareRef(f"{JOBS}:RateLimited", RATE_LIMIT)]},
    ),
    Forgery(
        RECORD,
        "is os:popen, defined outside",
        record,
        {"middleware": [MiddlewareRef(f"{BAIT}:popen", {})]},
    ),
    Forgery(
        RECORD, "json.decoder:JSONDecodeError", record, {"retry_on": [f"{BAIT}:JSONDecodeError"]}
    ),
    Forgery(RECORD, "not an exception class", record, {"retry_on": [RECORD]}),
    Forgery(RECORD, "not a builtin exception class", record, {"dont_retry_on": ["eval"]}),
]


def forged_message(forgery: Forgery, marker: Path) -> bytes:
    settings = JobSettings.from_values(forgery.settings)
    ref = JobRef(forgery.target, forgery.params(marker), settings)
    return encode_message(Envelope(ref, new_id()), "default")


@every_broker
async def test_every_forged_message_is_refused_recorded_and_never_runs(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    # Given one worker allowed two modules (one spelled with a trailing dot)
    imported = tmp_path / "forbidden-imported"
    worker = await cluster.start_worker(
        "--allow", JOBS, "--allow", f"{BAIT}.", ARVEL_FLOW_TEST_MARKER=str(imported)
    )
    assert f"allowed {JOBS},{BAIT}\n" in worker.output()
    # When every forgery arrives, each armed to leave a marker if it ran, then a good job
    markers = [tmp_path / f"ran-{index}" for index in range(len(FORGERIES))]
    for forgery, marker in zip(FORGERIES, markers, strict=True):
        await publish_raw(cluster, forged_message(forgery, marker))
    await dispatcher.dispatch(Record(journal=cluster.journal_key, tag="good"))
    # Then the good job runs, in the same worker, which is still serving
    await cluster.wait_for(lambda: cluster.tags() == ["good"], 15, "the good job ran")
    assert worker.process.poll() is None
    # And every forgery is recorded as failed, refused by the allowlist with its reason
    failed_key = f"{cluster.prefix}failed"
    expected = len(FORGERIES)
    await cluster.wait_for(lambda: cluster.redis.hlen(failed_key) == expected, 10, "recorded")
    failures = {str(f.payload.get("tag", f.job)): f for f in await dispatcher.store.list_failed()}
    assert len(failures) == expected
    for forgery, marker in zip(FORGERIES, markers, strict=True):
        failed = failures[marker.name if forgery.params is record else forgery.target]
        assert failed.job == forgery.target
        assert failed.exception == "arvel_flow.errors.ImportTargetError"
        assert forgery.reason in failed.message, (forgery, failed.message)
    # And none of them ran, or imported the module no worker may import
    assert [m.name for m in markers if m.exists() or cluster.redis.exists(str(m))] == []
    assert not imported.exists()
    assert json.dumps(cluster.tags()) == '["good"]'
