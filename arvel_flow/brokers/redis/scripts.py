"""The Lua scripts that keep the worker side of the Redis broker atomic.

Times for liveness are the Redis server's (``TIME``), so workers on machines whose
clocks disagree still agree on who is dead. Delays compare against the sender's
``available_at`` (wall-clock seconds), like every queue with ETAs.
"""

from __future__ import annotations

HEARTBEAT = """
-- KEYS: consumers zsets | ARGV: consumer, score ('' for the server's time in ms)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = now
if ARGV[2] ~= '' then score = tonumber(ARGV[2]) end
for _, key in ipairs(KEYS) do redis.call('ZADD', key, score, ARGV[1]) end
return now
"""

PROMOTE = """
-- KEYS: delayed, stream | ARGV: now, limit -> {moved, next due ('' when none)}
-- Each due message moves to the stream and leaves the set in this one script, so it
-- is delivered once however many workers promote at the same time.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, message in ipairs(due) do
    redis.call('XADD', KEYS[2], '*', 'data', message)
    redis.call('ZREM', KEYS[1], message)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, first[2] or ''}
"""

RECLAIM = """
-- KEYS: stream, consumers | ARGV: group, claimer, timeout_ms, foreign_idle_ms, budget
-- -> {{id, {field, value, ...}, deliveries}, ...}
-- Moves to the claimer the pending messages of dead consumers: those whose last
-- heartbeat is older than timeout_ms, and, for consumers that never sent one (a stock
-- Taskiq worker), messages idle longer than foreign_idle_ms. Dead consumers left with
-- nothing pending are forgotten.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local group, claimer = ARGV[1], ARGV[2]
local timeout, foreign_idle = tonumber(ARGV[3]), tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], group)
if not ok then return {} end
local out = {}
local in_group = {}
for _, info in ipairs(consumers) do
    local c = {}
    for i = 1, #info, 2 do c[info[i]] = info[i + 1] end
    local name = c['name']
    in_group[name] = true
    local beat = redis.call('ZSCORE', KEYS[2], name)
    local min_idle = nil
    if name ~= claimer then
        if beat then
            if now - tonumber(beat) > timeout then min_idle = 0 end
        else
            min_idle = foreign_idle
        end
    end
    if min_idle ~= nil then
        local pending = tonumber(c['pending'])
        if pending > 0 and budget > 0 then
            local entries = redis.call(
                'XPENDING', KEYS[1], group, 'IDLE', min_idle, '-', '+', budget, name)
            for _, e in ipairs(entries) do
                local claimed = redis.call('XCLAIM', KEYS[1], group, claimer, 0, e[1])
                if type(claimed[1]) == 'table' then
                    table.insert(out, {claimed[1][1], claimed[1][2], tonumber(e[4]) + 1})
                else
                    -- The entry was deleted from the stream: nothing left to run.
                    redis.call('XACK', KEYS[1], group, e[1])
                end
                budget = budget - 1
                pending = pending - 1
            end
        end
        if beat and min_idle == 0 and pending <= 0 then
            redis.call('XGROUP', 'DELCONSUMER', KEYS[1], group, name)
            redis.call('ZREM', KEYS[2], name)
        end
    end
end
-- Heartbeats of dead workers that never joined this stream's group.
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - timeout)
for _, name in ipairs(stale) do
    if not in_group[name] then redis.call('ZREM', KEYS[2], name) end
end
return out
"""
