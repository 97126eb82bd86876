"""The Lua scripts of Redis presence (``tether.live.presence.redis``): each
change is one script, so it is atomic across every process and host.

Keys, under ``P = tether:<namespace>:presence:``:

- ``P<channel>:conns``, a hash: one field per connection, its id (32 hex
  digits) then its member id; the value is the worker's id (32 hex digits),
  the entry time by Redis's clock (16 digits: seconds and microseconds), then
  the meta as JSON.
- ``P<channel>:counts``, a hash: each member's number of connections, which
  says atomically whether a connection is the member's first or last.
- ``tether:<namespace>:presence-workers``, a sorted set: each worker process
  with connections, scored by its deadline (ms, Redis's clock); a heartbeat
  pushes it back by the TTL.
- ``tether:<namespace>:presence-worker:<id>``, a hash: that worker's
  connections (the same fields), each with its channel, so that a reaper
  finds them.

Every script reads the time from Redis (``TIME``), so hosts whose clocks
differ still agree on who has expired. They need Redis 6.2 or later
(``HRANDFIELD``) and a single Redis, not Redis Cluster (a reap touches the
keys of several channels).
"""

from __future__ import annotations

import hashlib
import typing as t

import redis

__all__ = ["HEARTBEAT", "JOIN", "LEAVE", "MEMBERS", "Script"]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""


class Script:
    """A Lua script run by its SHA1, loaded again when Redis forgot it."""

    def __init__(self, source: str) -> None:
        self.source = _NOW + source
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def __call__(self, client: t.Any, keys: list[str], args: list[t.Any]) -> t.Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)

    async def run_async(self, client: t.Any, keys: list[str], args: list[t.Any]) -> t.Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            return await client.eval(self.source, len(keys), *keys, *args)


#: KEYS: conns, counts, workers, worker's hash. ARGV: field, member, meta,
#: worker, TTL (ms), channel. Returns {first, known}: whether the connection
#: is its member's first, and whether the worker was registered before (when
#: not, while it had other connections, it was reaped: they must be re-added).
#: Adding a connection twice changes nothing.
JOIN = Script("""
local known = redis.call('ZSCORE', KEYS[3], ARGV[4]) and 1 or 0
redis.call('ZADD', KEYS[3], string.format('%d', now + tonumber(ARGV[5])), ARGV[4])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[6])
local value = ARGV[4] .. string.format('%010d%06d', tonumber(t[1]), tonumber(t[2])) .. ARGV[3]
if redis.call('HSETNX', KEYS[1], ARGV[1], value) == 0 then
  return {0, known}
end
if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
  return {1, known}
end
return {0, known}
""")

#: KEYS: conns, counts, worker's hash. ARGV: field, member. Returns 1 when the
#: connection was its member's last, 0 when others remain, -1 when it was gone
#: already (reaped: the reaper announced the leave).
LEAVE = Script("""
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return -1
end
if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) > 0 then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[2])
return 1
""")

#: KEYS: conns, workers. Returns the fields and values of the connections
#: whose worker has not expired: right at the deadline, reaped or not.
MEMBERS = Script("""
local all = redis.call('HGETALL', KEYS[1])
local alive, out = {}, {}
for i = 1, #all, 2 do
  local worker = string.sub(all[i + 1], 1, 32)
  if alive[worker] == nil then
    local deadline = redis.call('ZSCORE', KEYS[2], worker)
    alive[worker] = (deadline and tonumber(deadline) >= now) or false
  end
  if alive[worker] then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
""")

#: KEYS: workers. ARGV: worker, TTL (ms), register (1 when the worker has
#: connections), the channel key prefix, the worker key prefix, a budget of
#: connections to reap. Pushes this worker's deadline back, then removes the
#: connections of expired workers, at most about ``budget`` of them. Returns
#: {known, more, channel, field, value, ...}: whether this worker was still
#: registered, whether expired connections remain, and each connection that
#: was its member's last (a leave to announce). Reapers running at once are
#: serialized by Redis: a connection is removed, and its leave returned, once.
HEARTBEAT = Script("""
local known = 1
if ARGV[3] == '1' then
  known = redis.call('ZSCORE', KEYS[1], ARGV[1]) and 1 or 0
  redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
end
local out = {known, 0}
local budget = tonumber(ARGV[6])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('(%d', now), 'LIMIT', 0, 16)
for _, worker in ipairs(dead) do
  local hash = ARGV[5] .. worker
  local page = redis.call('HRANDFIELD', hash, budget, 'WITHVALUES')
  for i = 1, #page, 2 do
    local field, channel = page[i], page[i + 1]
    redis.call('HDEL', hash, field)
    local conns = ARGV[4] .. channel .. ':conns'
    local value = redis.call('HGET', conns, field)
    if value then
      redis.call('HDEL', conns, field)
      local counts = ARGV[4] .. channel .. ':counts'
      local member = string.sub(field, 33)
      if redis.call('HINCRBY', counts, member, -1) <= 0 then
        redis.call('HDEL', counts, member)
        out[#out + 1] = channel
        out[#out + 1] = field
        out[#out + 1] = value
      end
    end
  end
  budget = budget - #page / 2
  if redis.call('EXISTS', hash) == 1 then
    out[2] = 1
    return out
  end
  redis.call('ZREM', KEYS[1], worker)
  if budget <= 0 then
    out[2] = 1
    return out
  end
end
return out
""")
