"""A store in Redis: run state shared by workers on many machines.

Every decision is one Lua script, so it is atomic on the server however many workers
race for it. Keys, under the prefix (``arvel-flow:`` by default)::

    run:{run_id}             hash    name, status, created_at, finished_at, source,
                                     trigger, scheduled_at
    plan:{run_id}            string  the plan, JSON
    steps:{run_id}           hash    step -> JSON record
    batch:{run_id}:{batch}   hash    claimed, done, failed, cancelled, cancel_flag
    runs                     zset    run ids by created_at
    failed                   hash    failed-job id -> JSON record
    failed:index             zset    failed-job ids by failed_at
    rl:{key}                 zset    rate-limit hits by time
    lock:{key}               string  lock owner (see `RedisLock`)
    owner:{run_id}           hash    the run's owner lease (`RunOwner`), expiring with it
    events:{run_id}          stream  the run's events, from the workers (`run_events`)
    tick:{trigger}           hash    a schedule trigger's last claimed tick (`TickRecord`)

Times inside JSON step records are strings holding Python's ``repr`` of the float:
Lua's cjson would round numbers to 14 digits, a tenth of a millisecond on epoch times.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, fields
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from arvel_flow.errors import ConfigError, ConfigIssue, RunNotFoundError
from arvel_flow.lock.contracts import LockContract
from arvel_flow.lock.redis import RedisLock
from arvel_flow.redis_support import Coalescer, describe_client, redis_errors, ttl_to_ms
from arvel_flow.store import redis_scripts as scripts
from arvel_flow.store.contracts import (
    BatchCounters,
    FailedJob,
    RunOwner,
    RunRecord,
    RunStatus,
    StepRecord,
    StepState,
    TickRecord,
)
from arvel_flow.store.run_events import RunEventReader
from arvel_flow.store.urls import mask_url

__all__ = ["RedisStore", "mask_url"]

_COUNTER_FIELDS = ("claimed", "done", "failed", "cancelled", "cancel_flag")
_MISSING_RUN = -1
_CONNECT_TIMEOUT = 5.0
# Rate-limit windows outlive their last hit by this much, then Redis drops them.
_WINDOW_GRACE_MS = 60_000
_SCAN_COUNT = 1_000
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _time(value: float) -> str:
    # repr round-trips exactly; Redis and this module then compare the same doubles.
    return repr(float(value))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _step(step: str, raw: bytes | str) -> StepRecord:
    data = json.loads(raw)
    return StepRecord(
        step,
        data["state"],
        int(data["attempts"]),
        data["error"],
        _float(data["started_at"]),
        _float(data["finished_at"]),
    )


def _counters(values: Sequence[Any]) -> BatchCounters:
    claimed, done, failed, cancelled, flag = (int(v or 0) for v in values)
    return BatchCounters(claimed, done, failed, cancelled, bool(flag))


def _run(run_id: str, raw: Mapping[Any, Any]) -> RunRecord | None:
    if not raw:
        return None
    data = {_text(k): _text(v) for k, v in raw.items()}
    return RunRecord(
        run_id,
        data["name"],
        cast(RunStatus, data["status"]),
        float(data["created_at"]),
        _float(data.get("finished_at")),
        data.get("source"),
        data.get("trigger"),
        _float(data.get("scheduled_at")),
    )


def _failed_json(record: FailedJob) -> str:
    data = {f.name: getattr(record, f.name) for f in fields(record)}
    data.update(payload=dict(record.payload), settings=dict(record.settings))
    # Recording a failure must not fail itself: values JSON cannot hold become text.
    return json.dumps(data, default=str)


def _failed(raw: bytes | str) -> FailedJob:
    return FailedJob(**json.loads(raw))


def _owner(values: Sequence[Any]) -> RunOwner:
    data = {_text(k): _text(v) for k, v in zip(values[::2], values[1::2], strict=True)}
    return RunOwner(
        data["owner_id"],
        data["host"],
        int(data["pid"]),
        float(data["started_at"]),
        float(data["seen_at"]),
        float(data["expires_at"]),
    )


def _owner_fields(owner: RunOwner) -> list[str]:
    values = [owner.owner_id, owner.host, str(owner.pid)]
    values += [_time(t) for t in (owner.started_at, owner.seen_at, owner.expires_at)]
    names = [f.name for f in fields(RunOwner)]
    return [item for pair in zip(names, values, strict=True) for item in pair]


def _glob_prefix(prefix: str) -> str:
    """A ``SCAN ... MATCH`` pattern for what starts with ``prefix``, taken literally."""
    return _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"


def _counted_nodes(plan: Any) -> Iterator[str]:
    """The keys of a stored plan's batch and fan-out nodes: those with batch counters.

    A superset at worst (a job's parameters shaped like a node): deleting a key that
    does not exist is harmless.
    """
    if isinstance(plan, dict):
        if plan.get("kind") in ("batch", "fanout") and isinstance(plan.get("key"), str):
            yield plan["key"]
        for value in plan.values():
            yield from _counted_nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _counted_nodes(value)


def _error_args(error: str | None) -> list[str]:
    # A flag and a value: script arguments cannot be nil, and "" is a valid message.
    return ["0", ""] if error is None else ["1", error]


class RedisStore:
    """A `StoreContract` in Redis, shared by every process that uses the same server.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL, as redis-py accepts it.
        prefix: Put before every key, so several deployments can share one database.
        max_connections: The size of the client's pool (redis-py's default if None).

    Raises:
        ConfigError: The URL cannot be parsed.

    Connection problems surface on first use, as `BackendError` naming the URL with
    its password masked.
    """

    _client: Redis
    _owns_client: bool

    def __init__(
        self, url: str, prefix: str = "arvel-flow:", *, max_connections: int | None = None
    ) -> None:
        backend = mask_url(url)
        pool: dict[str, Any] = (
            {} if max_connections is None else {"max_connections": max_connections}
        )
        try:
            client = Redis.from_url(
                url, decode_responses=True, socket_connect_timeout=_CONNECT_TIMEOUT, **pool
            )
        except ValueError as exc:
            issue = ConfigIssue(f"invalid redis URL {backend!r}: {exc}", path="store")
            raise ConfigError([issue]) from None
        self._bind(client, prefix, backend, owns_client=True)

    @classmethod
    def from_client(cls, client: Redis, prefix: str = "arvel-flow:") -> RedisStore:
        """A store on an existing client, which the caller keeps and closes."""
        store = cls.__new__(cls)
        store._bind(client, prefix, describe_client(client), owns_client=False)
        return store

    def _bind(self, client: Redis, prefix: str, backend: str, *, owns_client: bool) -> None:
        self._client = client
        self._prefix = prefix
        self._backend = backend
        self._owns_client = owns_client
        # Scripts and locks of jobs running at once share round trips (`Coalescer`).
        self._commands = Coalescer(client)
        self._lock = RedisLock(client, prefix=f"{prefix}lock:", commands=self._commands)
        self._scripts = {name: client.register_script(text) for name, text in scripts.ALL.items()}

    def run_events(self) -> RunEventReader:
        """A reader of the runs' event streams (`arvel_flow.store.run_events`), on this client."""
        return RunEventReader(self._client, self._prefix, self._backend)

    def lock(self) -> LockContract:
        """A `RedisLock` on the same client, its keys under ``{prefix}lock:``."""
        return self._lock

    async def close(self) -> None:
        """Close the client if this store created it."""
        if self._owns_client:
            await self._client.aclose()

    # Plumbing -----------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def _eval(self, script: str, keys: Sequence[str], args: Iterable[Any]) -> Any:
        code = self._scripts[script]
        command = [len(keys), *keys, *args]
        with redis_errors(self._backend):
            try:
                return await self._commands.call("EVALSHA", code.sha, *command)
            except NoScriptError:  # Redis restarted, or its scripts were flushed
                code.sha = await self._client.script_load(code.script)
                return await self._commands.call("EVALSHA", code.sha, *command)

    async def _eval_on_run(
        self, script: str, run_id: str, keys: Sequence[str], args: Iterable[Any]
    ) -> Any:
        """Run a script whose first key is the run; it answers -1 when the run is unknown."""
        result = await self._eval(script, [self._key("run", run_id), *keys], args)
        if result == _MISSING_RUN:
            raise RunNotFoundError(run_id)
        return result

    async def _multi(self, *commands: tuple[str, Sequence[Any]]) -> list[Any]:
        """Run commands as one MULTI/EXEC transaction; for writes that decide nothing."""
        with redis_errors(self._backend):
            async with self._client.pipeline(transaction=True) as pipe:
                for name, args in commands:
                    pipe.execute_command(name, *args)
                return await pipe.execute()

    async def _scan_members(self, index: str, prefix: str, limit: int) -> list[str]:
        """Members of a sorted set that start with ``prefix``, in text order."""
        found: set[str] = set()
        with redis_errors(self._backend):
            async for member, _ in self._client.zscan_iter(
                index, match=_glob_prefix(prefix), count=_SCAN_COUNT
            ):
                found.add(_text(member))
        # MATCH is only a filter: a backslash or bracket is checked here once more.
        return sorted(m for m in found if m.startswith(prefix))[: max(limit, 0)]

    async def _newest(self, index: str, limit: int | None) -> list[str]:
        """Members of a sorted set, highest score first, at most ``limit``."""
        with redis_errors(self._backend):
            members = await self._client.zrevrange(index, 0, -1 if limit is None else limit - 1)
        return [_text(cast(bytes | str, member)) for member in members]

    # Runs ---------------------------------------------------------------------------
    async def create_run(self, record: RunRecord, plan: Mapping[str, Any]) -> bool:
        """Store the run and its plan, unless a run has its id (one script)."""
        values: list[str] = [
            "name",
            record.name,
            "status",
            record.status,
            "created_at",
            _time(record.created_at),
        ]
        if record.finished_at is not None:
            values += ["finished_at", _time(record.finished_at)]
        if record.source is not None:
            values += ["source", record.source]
        if record.trigger is not None:
            values += ["trigger", record.trigger]
        if record.scheduled_at is not None:
            values += ["scheduled_at", _time(record.scheduled_at)]
        keys = [
            self._key("run", record.run_id),
            self._key("plan", record.run_id),
            self._key("steps", record.run_id),
            self._key("runs"),
        ]
        args = [record.run_id, _time(record.created_at), json.dumps(dict(plan)), *values]
        return bool(await self._eval("create_run", keys, args))

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        with redis_errors(self._backend):
            raw = await self._client.hgetall(self._key("run", run_id))
        return _run(run_id, raw)

    async def load_plan(self, run_id: str) -> Mapping[str, Any]:
        """The plan stored with the run."""
        with redis_errors(self._backend):
            raw = await self._client.get(self._key("plan", run_id))
        if raw is None:
            raise RunNotFoundError(run_id)
        return cast(Mapping[str, Any], json.loads(raw))

    async def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """Most recent first (runs created at the same instant: by id, descending)."""
        if limit <= 0:
            return []
        ids = await self._newest(self._key("runs"), limit)
        hashes = await self._multi(*(("HGETALL", [self._key("run", i)]) for i in ids))
        runs = (_run(run_id, raw) for run_id, raw in zip(ids, hashes, strict=True))
        return [run for run in runs if run is not None]

    async def set_run_status(self, run_id: str, status: RunStatus, at: float) -> bool:
        """Final statuses are set once (one script)."""
        return bool(await self._eval_on_run("set_run_status", run_id, [], [status, _time(at)]))

    async def find_run_ids(self, prefix: str, limit: int) -> list[str]:
        """Run ids starting with ``prefix`` (``ZSCAN`` of the run index, glob escaped)."""
        return await self._scan_members(self._key("runs"), prefix, limit)

    async def prune_runs(self, before: float, *, interrupted: bool = False) -> list[str]:
        """Delete ended runs and their keys, one script per run.

        Runs created before ``before`` are the candidates (a run ends after it
        starts); each script checks the run's status again, so a run resumed
        meanwhile stays. Batch counter keys are named after the plan's batches.
        """
        with redis_errors(self._backend):
            ids = await self._client.zrangebyscore(self._key("runs"), "-inf", f"({_time(before)}")
        pruned: list[str] = []
        for run_id in (_text(cast(bytes | str, i)) for i in ids):
            with redis_errors(self._backend):
                plan = await self._client.get(self._key("plan", run_id))
            batches = sorted(set(_counted_nodes(json.loads(plan)))) if plan else []
            keys = [
                self._key("run", run_id),
                self._key("runs"),
                self._key("plan", run_id),
                self._key("steps", run_id),
                self._key("owner", run_id),
                self._key("events", run_id),
                *(self._key("batch", run_id, batch) for batch in batches),
            ]
            args = [_time(before), "1" if interrupted else "0", run_id]
            if await self._eval("prune_run", keys, args) == 1:
                pruned.append(run_id)
        return pruned

    # Run owners ---------------------------------------------------------------------
    async def take_run_owner(
        self, run_id: str, owner: RunOwner, *, replacing: str | None = None
    ) -> RunOwner:
        """Take or renew the lease unless another owner's is live (one script).

        The key also expires with the lease (``PEXPIRE``), so leases nobody looks at
        again do not pile up.
        """
        ttl_ms = ttl_to_ms(owner.expires_at - owner.seen_at)
        now = _time(owner.seen_at)
        args = [owner.owner_id, replacing or "", ttl_ms, now, *_owner_fields(owner)]
        holder = await self._eval("take_run_owner", [self._key("owner", run_id)], args)
        return _owner(holder) if holder else owner

    async def release_run_owner(self, run_id: str, owner_id: str) -> bool:
        """Drop the lease if ``owner_id`` holds it (one script)."""
        keys = [self._key("owner", run_id)]
        return bool(await self._eval("release_run_owner", keys, [owner_id]))

    async def get_run_owner(self, run_id: str, at: float) -> RunOwner | None:
        """The owner whose lease is live (the key exists only while it is)."""
        with redis_errors(self._backend):
            raw = await self._client.hgetall(self._key("owner", run_id))
        if not raw:
            return None
        owner = _owner([item for pair in raw.items() for item in pair])
        return owner if owner.expires_at > at else None

    # Steps --------------------------------------------------------------------------
    async def claim_step(self, run_id: str, step: str, at: float) -> bool:
        """Pending to queued, once (``HSETNX``)."""
        record = {
            "state": "queued",
            "attempts": 0,
            "error": None,
            "started_at": _time(at),
            "finished_at": None,
        }
        keys = [self._key("steps", run_id)]
        return bool(await self._eval_on_run("claim_step", run_id, keys, [step, json.dumps(record)]))

    async def update_step(
        self,
        run_id: str,
        step: str,
        state: StepState,
        *,
        attempts: int | None = None,
        error: str | None = None,
        at: float,
    ) -> None:
        """Progress of a step that is not final (one script)."""
        args = [step, state, "" if attempts is None else attempts, *_error_args(error), _time(at)]
        await self._eval_on_run("update_step", run_id, [self._key("steps", run_id)], args)

    async def finish_step(
        self,
        run_id: str,
        step: str,
        state: StepState,
        *,
        attempts: int = 0,
        error: str | None = None,
        at: float,
        batch: str | None = None,
    ) -> BatchCounters | bool:
        """Final once; counts into ``batch`` in the same script."""
        keys = [self._key("steps", run_id)]
        if batch is not None:
            keys.append(self._key("batch", run_id, batch))
        args = [step, state, attempts, *_error_args(error), _time(at)]
        result = await self._eval_on_run("finish_step", run_id, keys, args)
        if isinstance(result, list):
            return _counters(result)
        return bool(result)

    async def finish_and_claim(
        self,
        run_id: str,
        step: str,
        state: StepState,
        following: str,
        *,
        attempts: int = 0,
        error: str | None = None,
        at: float,
    ) -> tuple[bool, bool]:
        """`finish_step`, then `claim_step` of ``following``, in one script."""
        claim = {
            "state": "queued",
            "attempts": 0,
            "error": None,
            "started_at": _time(at),
            "finished_at": None,
        }
        args = [step, state, attempts, *_error_args(error), _time(at), following]
        args.append(json.dumps(claim))
        keys = [self._key("steps", run_id)]
        finished, claimed = await self._eval_on_run("finish_and_claim", run_id, keys, args)
        return bool(finished), bool(claimed)

    async def mark_steps(
        self, run_id: str, steps: Sequence[str], state: StepState, at: float
    ) -> None:
        """Final state for the listed steps that are not final (one script)."""
        keys = [self._key("steps", run_id)]
        await self._eval_on_run("mark_steps", run_id, keys, [state, _time(at), *steps])

    async def get_steps(
        self, run_id: str, steps: Sequence[str] | None = None
    ) -> dict[str, StepRecord]:
        """Records of the listed steps (only those are fetched), or all."""
        run_key, steps_key = self._key("run", run_id), self._key("steps", run_id)
        if steps is None:
            exists, raw = await self._multi(("EXISTS", [run_key]), ("HGETALL", [steps_key]))
        elif steps:
            exists, values = await self._multi(
                ("EXISTS", [run_key]), ("HMGET", [steps_key, *steps])
            )
            raw = {step: value for step, value in zip(steps, values, strict=True) if value}
        else:
            exists, raw = await self.get_run(run_id) is not None, {}
        if not exists:
            raise RunNotFoundError(run_id)
        return {_text(k): _step(_text(k), v) for k, v in raw.items()}

    async def settle_retried_step(
        self, run_id: str, step: str, *, attempts: int, at: float
    ) -> bool:
        """Failed to succeeded, for a retry that succeeded (one script)."""
        keys = [self._key("steps", run_id)]
        args = [step, attempts, _time(at)]
        return bool(await self._eval_on_run("settle_retried_step", run_id, keys, args))

    async def reopen_run(
        self,
        run_id: str,
        steps: Sequence[str],
        counters: Mapping[str, BatchCounters],
        at: float,
    ) -> bool:
        """Running again, the steps forgotten, the counters set (one script)."""
        batches = list(counters)
        keys = [self._key("steps", run_id), *(self._key("batch", run_id, b) for b in batches)]
        values = [int(v) for b in batches for v in astuple(counters[b])]
        args = [len(steps), *steps, *values]
        return bool(await self._eval_on_run("reopen_run", run_id, keys, args))

    # Batches ------------------------------------------------------------------------
    async def claim_members(self, run_id: str, batch: str, total: int, limit: int | None) -> range:
        """Next members, within the concurrency limit (one script)."""
        args = [total, "" if limit is None else limit]
        start, count = await self._eval("claim_members", [self._key("batch", run_id, batch)], args)
        return range(int(start), int(start) + int(count)) if count else range(0)

    async def cancel_members(self, run_id: str, batch: str, total: int) -> BatchCounters | None:
        """Cancel members not yet claimed, once (one script)."""
        result = await self._eval("cancel_members", [self._key("batch", run_id, batch)], [total])
        return None if result is None else _counters(result)

    async def batch_counters(self, run_id: str, batch: str) -> BatchCounters:
        """Current counters."""
        with redis_errors(self._backend):
            values = await self._client.hmget(self._key("batch", run_id, batch), _COUNTER_FIELDS)
        return _counters(values)

    # Failed jobs ----------------------------------------------------------------------
    async def add_failed(self, record: FailedJob) -> None:
        """Keep the failure; the same id again replaces it."""
        await self._multi(
            ("HSET", [self._key("failed"), record.id, _failed_json(record)]),
            ("ZADD", [self._key("failed:index"), _time(record.failed_at), record.id]),
        )

    async def list_failed(
        self, limit: int | None = None, *, run_id: str | None = None
    ) -> list[FailedJob]:
        """Most recent first (failed at the same instant: by id, descending).

        With ``run_id`` every record is read and filtered here: Redis keeps no index
        of failed jobs by run.
        """
        if limit is not None and limit <= 0:
            return []
        ids = await self._newest(self._key("failed:index"), None if run_id else limit)
        with redis_errors(self._backend):
            raw = await self._client.hmget(self._key("failed"), ids) if ids else []
        # A job forgotten between the two reads is simply not listed.
        records = [_failed(item) for item in raw if item is not None]
        if run_id is not None:
            records = [r for r in records if r.run_id == run_id][:limit]
        return records

    async def find_failed_ids(self, prefix: str, limit: int) -> list[str]:
        """Failed-job ids starting with ``prefix`` (``ZSCAN`` of their index, glob escaped)."""
        return await self._scan_members(self._key("failed:index"), prefix, limit)

    async def get_failed(self, failed_id: str) -> FailedJob | None:
        """One failure, or None."""
        with redis_errors(self._backend):
            raw = await self._client.hget(self._key("failed"), failed_id)
        return None if raw is None else _failed(raw)

    async def forget_failed(self, failed_id: str) -> bool:
        """Delete one."""
        deleted, _ = await self._multi(
            ("HDEL", [self._key("failed"), failed_id]),
            ("ZREM", [self._key("failed:index"), failed_id]),
        )
        return bool(deleted)

    async def flush_failed(
        self,
        *,
        before: float | None = None,
        run_id: str | None = None,
        job: str | None = None,
    ) -> int:
        """Delete those that match every filter given (all: two ``DEL``; else one script)."""
        if before is None and run_id is None and job is None:
            count, _, _ = await self._multi(
                ("HLEN", [self._key("failed")]),
                ("DEL", [self._key("failed")]),
                ("DEL", [self._key("failed:index")]),
            )
            return int(count)
        keys = [self._key("failed"), self._key("failed:index")]
        args = [
            "+inf" if before is None else f"({_time(before)}",
            *(["0", ""] if run_id is None else ["1", run_id]),
            *(["0", ""] if job is None else ["1", job]),
        ]
        return int(await self._eval("flush_failed", keys, args))

    # Rate limits ----------------------------------------------------------------------
    async def claim_tick(self, record: TickRecord) -> bool:
        """Keep ``record`` if it is later than the trigger's last tick (one script)."""
        args = [_time(record.at), _time(record.claimed_at), record.run_id or "", record.note or ""]
        return bool(await self._eval("claim_tick", [self._key("tick", record.trigger)], args))

    async def last_tick(self, trigger: str) -> TickRecord | None:
        """The last claimed tick."""
        with redis_errors(self._backend):
            raw = await self._client.hgetall(self._key("tick", trigger))
        if not raw:
            return None
        data = {_text(k): _text(v) for k, v in raw.items()}
        return TickRecord(
            trigger,
            float(data["at"]),
            float(data["claimed_at"]),
            data.get("run_id"),
            data.get("note"),
        )

    async def hit_rate_limit(
        self, key: str, max_attempts: int, decay_seconds: float, now: float
    ) -> float | None:
        """Sliding window of hit times per key, in a sorted set every worker shares."""
        # The cut-off is computed here, not in Lua, whose number formatting would
        # round it; members are unique so two hits at the same instant both count.
        ttl_ms = math.ceil(decay_seconds * 1000) + _WINDOW_GRACE_MS
        args = [_time(now - decay_seconds), _time(now), max_attempts, uuid.uuid4().hex, ttl_ms]
        oldest = await self._eval("hit_rate_limit", [self._key("rl", key)], args)
        return None if oldest is None else float(oldest) + decay_seconds
