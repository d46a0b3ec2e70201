"""The Lua scripts that make every decision of `RedisStore` atomic on the server.

Each mirrors the method of the same name in `MemoryStore`; keep them in step. Scripts
that take the run hash as ``KEYS[1]`` answer -1 when the run does not exist. Step
records are JSON objects whose times are strings (see `arvel_flow.store.redis`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from arvel_flow.store.contracts import FINAL_RUN_STATUSES, FINAL_STATES


def _lua_set(names: Iterable[str]) -> str:
    return "{" + ", ".join(f"[{json.dumps(name)}] = true" for name in sorted(names)) + "}"


_PRELUDE = f"""
local FINAL = {_lua_set(FINAL_STATES)}
local FINAL_RUN = {_lua_set(FINAL_RUN_STATUSES)}
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
"""

SET_RUN_STATUS = """
-- KEYS: run | ARGV: status, at
if FINAL_RUN[redis.call('HGET', KEYS[1], 'status')] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if FINAL_RUN[ARGV[1]] then
    redis.call('HSET', KEYS[1], 'finished_at', ARGV[2])
else
    redis.call('HDEL', KEYS[1], 'finished_at')
end
return 1
"""

PRUNE_RUN = """
-- KEYS: run, runs index, plan, steps, owner, events, batch... | ARGV: before, interrupted, run_id
-- -> 1 when the run had ended (see `StoreContract.prune_runs`) and was deleted, else 0
local run = redis.call('HMGET', KEYS[1], 'status', 'finished_at', 'created_at')
local before = tonumber(ARGV[1])
local ended
if FINAL_RUN[run[1]] then
    ended = run[2] and tonumber(run[2]) < before
else
    ended = ARGV[2] == '1' and run[1] == 'interrupted' and tonumber(run[3]) < before
end
if not ended then return 0 end
redis.call('ZREM', KEYS[2], ARGV[3])
for i = 1, #KEYS do
    if i ~= 2 then redis.call('DEL', KEYS[i]) end
end
return 1
"""

CLAIM_STEP = """
-- KEYS: run, steps | ARGV: step, record
return redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
"""

UPDATE_STEP = """
-- KEYS: run, steps | ARGV: step, state, attempts ('' keeps), has_error, error, at
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local rec
if raw then
    rec = cjson.decode(raw)
else
    rec = {state = 'pending', attempts = 0, error = cjson.null, started_at = ARGV[6],
           finished_at = cjson.null}
end
if FINAL[rec.state] then return 0 end
rec.state = ARGV[2]
if ARGV[3] ~= '' then rec.attempts = tonumber(ARGV[3]) end
if ARGV[4] == '1' then rec.error = ARGV[5] end
rec.finished_at = cjson.null
-- Python's `started_at or at`: unset or zero takes the new time.
if rec.started_at == cjson.null or tonumber(rec.started_at) == 0 then
    rec.started_at = ARGV[6]
end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(rec))
return 1
"""

FINISH_STEP = """
-- KEYS: run, steps[, batch] | ARGV: step, state, attempts, has_error, error, at
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local started = ARGV[6]
if raw then
    local current = cjson.decode(raw)
    if FINAL[current.state] then return 0 end
    started = current.started_at
end
local rec = {state = ARGV[2], attempts = tonumber(ARGV[3]), error = cjson.null,
             started_at = started, finished_at = ARGV[6]}
if ARGV[4] == '1' then rec.error = ARGV[5] end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(rec))
if not KEYS[3] then return 1 end
redis.call('HINCRBY', KEYS[3], 'done', 1)
if ARGV[2] == 'failed' then redis.call('HINCRBY', KEYS[3], 'failed', 1) end
return redis.call('HMGET', KEYS[3], 'claimed', 'done', 'failed', 'cancelled', 'cancel_flag')
"""

FINISH_AND_CLAIM = """
-- KEYS: run, steps | ARGV: step, state, attempts, has_error, error, at, following, record
-- -> {finished, claimed}: FINISH_STEP without a batch, then CLAIM_STEP of the following
local raw = redis.call('HGET', KEYS[2], ARGV[1])
local started = ARGV[6]
if raw then
    local current = cjson.decode(raw)
    if FINAL[current.state] then return {0, 0} end
    started = current.started_at
end
local rec = {state = ARGV[2], attempts = tonumber(ARGV[3]), error = cjson.null,
             started_at = started, finished_at = ARGV[6]}
if ARGV[4] == '1' then rec.error = ARGV[5] end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(rec))
return {1, redis.call('HSETNX', KEYS[2], ARGV[7], ARGV[8])}
"""

MARK_STEPS = """
-- KEYS: run, steps | ARGV: state, at, step...
for i = 3, #ARGV do
    local raw = redis.call('HGET', KEYS[2], ARGV[i])
    local current = raw and cjson.decode(raw)
    if not (current and FINAL[current.state]) then
        local rec = {state = ARGV[1], attempts = current and current.attempts or 0,
                     error = cjson.null, started_at = current and current.started_at or cjson.null,
                     finished_at = ARGV[2]}
        redis.call('HSET', KEYS[2], ARGV[i], cjson.encode(rec))
    end
end
return 1
"""

SETTLE_RETRIED_STEP = """
-- KEYS: run, steps | ARGV: step, attempts, at
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.state ~= 'failed' then return 0 end
rec.state = 'succeeded'
rec.attempts = tonumber(ARGV[2])
rec.error = cjson.null
rec.finished_at = ARGV[3]
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(rec))
return 1
"""

TAKE_RUN_OWNER = """
-- KEYS: owner | ARGV: owner_id, replacing ('' for none), ttl_ms, now, field, value, ...
-- -> {} when taken, else the live holder's fields. A lease has expired when its
-- expires_at is not after now (the callers' clocks, as in the other stores); the key's
-- PEXPIRE only clears leases that nobody looks at.
local current = redis.call('HMGET', KEYS[1], 'owner_id', 'expires_at')
if current[1] and current[1] ~= ARGV[1] and current[1] ~= ARGV[2]
        and tonumber(current[2]) > tonumber(ARGV[4]) then
    return redis.call('HGETALL', KEYS[1])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {}
"""

RELEASE_RUN_OWNER = """
-- KEYS: owner | ARGV: owner_id
if redis.call('HGET', KEYS[1], 'owner_id') == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

CLAIM_MEMBERS = """
-- KEYS: batch | ARGV: total, limit ('' for none) -> {first, count}
local c = redis.call('HMGET', KEYS[1], 'claimed', 'done', 'cancel_flag')
local claimed, done = tonumber(c[1]) or 0, tonumber(c[2]) or 0
local total = tonumber(ARGV[1])
if c[3] == '1' or claimed >= total then return {claimed, 0} end
local room = total - claimed
if ARGV[2] ~= '' then room = math.min(room, tonumber(ARGV[2]) - (claimed - done)) end
if room <= 0 then return {claimed, 0} end
redis.call('HSET', KEYS[1], 'claimed', claimed + room)
return {claimed, room}
"""

CANCEL_MEMBERS = """
-- KEYS: batch | ARGV: total -> counters, or nil when already cancelled
if redis.call('HGET', KEYS[1], 'cancel_flag') == '1' then return nil end
local total = tonumber(ARGV[1])
local started = math.min(tonumber(redis.call('HGET', KEYS[1], 'claimed')) or 0, total)
redis.call('HSET', KEYS[1], 'cancel_flag', 1, 'cancelled', total - started, 'claimed', total)
return redis.call('HMGET', KEYS[1], 'claimed', 'done', 'failed', 'cancelled', 'cancel_flag')
"""

FLUSH_FAILED = """
-- KEYS: failed, failed index | ARGV: max score ('(t' or '+inf'), has_run, run_id,
-- has_job, job -> how many records were deleted
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])) do
    local raw = redis.call('HGET', KEYS[1], id)
    local match = true
    if raw then
        local rec = cjson.decode(raw)
        if ARGV[2] == '1' and rec.run_id ~= ARGV[3] then match = false end
        if ARGV[4] == '1' and rec.job ~= ARGV[5] then match = false end
    end
    if match then
        n = n + redis.call('HDEL', KEYS[1], id)
        redis.call('ZREM', KEYS[2], id)
    end
end
return n
"""

HIT_RATE_LIMIT = """
-- KEYS: window | ARGV: cutoff, now, max_attempts, member, ttl_ms
-- -> nil when counted, else the score of the oldest hit (or now if there is none)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return nil
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return oldest[2] or ARGV[2]
"""

REOPEN_RUN = """
-- KEYS: run, steps, batch... | ARGV: step count, steps..., then 5 counters per batch key
if redis.call('HGET', KEYS[1], 'status') ~= 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HDEL', KEYS[1], 'finished_at')
local count = tonumber(ARGV[1])
for i = 2, count + 1 do redis.call('HDEL', KEYS[2], ARGV[i]) end
local fields = {'claimed', 'done', 'failed', 'cancelled', 'cancel_flag'}
for b = 3, #KEYS do
    local base = count + 1 + (b - 3) * 5
    for f = 1, 5 do redis.call('HSET', KEYS[b], fields[f], ARGV[base + f]) end
end
return 1
"""

CLAIM_TICK = """
-- KEYS: tick | ARGV: at, claimed_at, run_id ('' for none), note ('' for none)
local last = redis.call('HGET', KEYS[1], 'at')
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'at', ARGV[1], 'claimed_at', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'run_id', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'note', ARGV[4]) end
return 1
"""

CREATE_RUN = """
-- KEYS: run, plan, steps, runs | ARGV: run_id, created_at, plan json, field, value, ...
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('SET', KEYS[2], ARGV[3])
redis.call('DEL', KEYS[3])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
return 1
"""

_ON_RUN = {
    "set_run_status": SET_RUN_STATUS,
    "claim_step": CLAIM_STEP,
    "update_step": UPDATE_STEP,
    "finish_step": FINISH_STEP,
    "finish_and_claim": FINISH_AND_CLAIM,
    "mark_steps": MARK_STEPS,
    "settle_retried_step": SETTLE_RETRIED_STEP,
    "reopen_run": REOPEN_RUN,
    "prune_run": PRUNE_RUN,
}
_ON_BATCH_OR_KEY = {
    "claim_members": CLAIM_MEMBERS,
    "cancel_members": CANCEL_MEMBERS,
    "hit_rate_limit": HIT_RATE_LIMIT,
    "take_run_owner": TAKE_RUN_OWNER,
    "release_run_owner": RELEASE_RUN_OWNER,
    "flush_failed": FLUSH_FAILED,
    "claim_tick": CLAIM_TICK,
    "create_run": CREATE_RUN,
}

ALL: dict[str, str] = {
    **{name: _PRELUDE + body for name, body in _ON_RUN.items()},
    **_ON_BATCH_OR_KEY,
}
"""Script text by `RedisStore` method name."""
