"""Distributed runs carry secret references, never values: workers resolve them.

The secrets are set in the workers' environment (and, for the first test, in the
dispatching ``run`` too); afterwards every key under the test's Redis prefix (plans,
steps, failed jobs, stream messages) and every process's output is searched for them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from arvel_flow.errors import SecretError
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.drivers.taskiq import TaskiqQueue
from arvel_flow.queue.targets import JobRef
from arvel_flow.secrets import secret_env
from tests.e2e.harness import read_lines
from tests.e2e.jobs import ApiCall, fingerprint
from tests.e2e.leaks import DSN, PASSWORD, PEPPER, assert_no_secret, leaky_step
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]

E2E_JOBS = "tests.e2e.jobs"


def prefix_dump(client: redis.Redis, prefix: str) -> bytes:
    """Every value of every key under ``prefix``, whatever its type, as bytes."""
    parts: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*"):
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            parts += [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += client.zrange(key, 0, -1)
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                parts += [k + b"=" + v for k, v in fields.items()]
        parts.append(key)
    return b"\n".join(parts)


def write_pipeline(tmp_path: Path) -> Path:
    file = tmp_path / "leaky.yaml"
    file.write_text(
        f"""
version: 1
name: leaky
secrets: [APP_PEPPER]
pipeline:
  id: leak
  retry: {{max_retries: 1, backoff: 0.01}}
  {leaky_step(tmp_path, "  ")}
""",
        encoding="utf-8",
    )
    return file


async def wait_exit(process: subprocess.Popen[bytes], within: float = 30.0) -> int:
    """The exit code of ``process``, waiting at most ``within`` seconds."""
    return await asyncio.to_thread(process.wait, within)


async def test_a_distributed_run_keeps_secrets_out_of_redis_and_every_output(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Given a worker that has the secrets in its environment
    secrets = {"DB_PASSWORD": PASSWORD, "APP_PEPPER": PEPPER}
    worker = await cluster.start_worker(ARVEL_FLOW_ALLOWED_MODULES=E2E_JOBS, **secrets)

    # When a run of the leaky job is started through Redis
    run, log = cluster.spawn("run", [str(write_pipeline(tmp_path)), "--output", "plain"], secrets)
    code = await wait_exit(run)

    # Then the worker ran it with the real values (twice: it failed and was retried)
    assert code == 1, log.read_text()
    assert read_lines(tmp_path / "journal") == [fingerprint(DSN, PASSWORD, PEPPER)] * 2
    # And no key under the prefix, nor the run's or the worker's output, holds a secret
    assert_no_secret(prefix_dump(cluster.redis, cluster.prefix), "redis")
    assert_no_secret(log.read_bytes(), "arvel-flow run")
    assert_no_secret(worker.log.read_bytes(), "the worker")
    assert "dsn=postgres://app:***@db/x" in worker.output() + log.read_text()


async def test_a_worker_without_the_variable_fails_the_job_naming_it(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Given a worker whose environment lacks DB_PASSWORD
    await cluster.start_worker(ARVEL_FLOW_ALLOWED_MODULES=E2E_JOBS, APP_PEPPER=PEPPER)

    # When a run needing it is started from a process that has it
    secrets = {"DB_PASSWORD": PASSWORD, "APP_PEPPER": PEPPER}
    run, log = cluster.spawn("run", [str(write_pipeline(tmp_path)), "--output", "plain"], secrets)
    code = await wait_exit(run)

    # Then the job failed without running, and its record names the variable, not a value
    assert code == 1, log.read_text()
    assert read_lines(tmp_path / "journal") == []
    failed = [
        json.loads(raw)
        for key in cluster.redis.scan_iter(match=f"{cluster.prefix}*failed*")
        if cluster.redis.type(key) == b"hash"
        for raw in cluster.redis.hvals(key)
        if raw.startswith(b"{")
    ]
    messages = [record.get("message", "") for record in failed]
    assert any(
        "environment variable 'DB_PASSWORD' is not set in this process" in m for m in messages
    ), failed
    assert "DB_PASSWORD" in log.read_text()


async def test_a_job_given_secrets_in_python_is_refused_at_dispatch(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    # Given a job whose token and signing key are given in Python
    job = ApiCall(api_token="tok-1234567", signing=SecretStr("sig-1234567"), journal="unused")

    # When it is sent to the workers, alone or in a chain
    # Then it is refused at once, naming the parameter, and nothing reaches Redis
    with pytest.raises(SecretError, match="parameter 'api_token' holds a secret given in Python"):
        await dispatcher.dispatch(job)
    with pytest.raises(SecretError, match="'api_token'"):
        await Chain(job).dispatch(dispatcher)
    assert b"1234567" not in prefix_dump(cluster.redis, cluster.prefix)


async def test_a_reference_given_in_python_is_resolved_by_the_worker(
    cluster: Cluster, dispatcher: TaskiqQueue, tmp_path: Path
) -> None:
    # Given a worker with API_TOKEN, and a job whose token is a reference to it
    await cluster.start_worker(ARVEL_FLOW_ALLOWED_MODULES=E2E_JOBS, API_TOKEN="tok-from-env-99")
    journal = tmp_path / "journal"
    ref = JobRef(
        f"{E2E_JOBS}:ApiCall",
        {
            "api_token": secret_env("API_TOKEN"),
            "signing": secret_env("API_TOKEN"),
            "journal": str(journal),
        },
    )

    # When it is dispatched
    await dispatcher.dispatch(ref)

    # Then the worker ran it with the value from its own environment
    await cluster.wait_for(lambda: bool(read_lines(journal)), 15, "the job to run")
    assert read_lines(journal) == [f"ran {fingerprint('tok-from-env-99')}"]
    assert b"tok-from-env-99" not in prefix_dump(cluster.redis, cluster.prefix)
