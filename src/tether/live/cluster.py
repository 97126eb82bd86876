"""Turns of a periodic service across every worker and host that share a Redis
(``@app.periodic(seconds, across="cluster")``): the Redis backend's
``turns`` (``tether.live.broadcast.backends.Turns``).

Time is cut in slots of one interval, by Redis's clock (``TIME``), so that
hosts whose clocks differ still agree. In each slot, the first worker to claim
it (``SET NX``) runs the function, provided no run is still going on anywhere:
a run holds a lease (a key with a TTL, renewed while it runs) that the next
slot's winner must also take. So the function runs once per interval, never
twice at once, and when its worker dies another one runs it in the next slot.
Its keys (``tether:<namespace>:periodic:<name>:...``) are the app's own: two
apps on one Redis with a service of the same name each take their own turns.
"""

from __future__ import annotations

import typing as t
import uuid

import redis
import redis.asyncio as aioredis

from .broadcast.errors import BroadcastUnavailable

__all__ = ["ClusterTurns"]

T = t.TypeVar("T")

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class ClusterTurns:
    """Who runs a periodic service ``name`` in each slot of ``interval`` seconds."""

    def __init__(self, url: str, namespace: str, name: str, interval: float) -> None:
        self._client: t.Any = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._interval = interval
        self._me = uuid.uuid4().hex
        prefix = f"tether:{namespace}:periodic:{name}"
        self._slots = f"{prefix}:slot:"
        self._running = f"{prefix}:running"
        #: The lease of a run: long enough to be renewed several times in it.
        self.lease_ms = int(max(interval, 1.0) * 2000)
        #: The slot this worker last ran (``None`` before its first run).
        self.slot: int | None = None

    async def _redis(self, call: t.Awaitable[T]) -> T:
        """``call``'s result; Redis out of reach is :class:`BroadcastUnavailable`, as the protocol says."""
        try:
            return await call
        except redis.RedisError as e:
            raise BroadcastUnavailable(f"Redis is unreachable ({e}).") from e

    async def _now(self) -> float:
        seconds, microseconds = await self._redis(self._client.time())
        return int(seconds) + int(microseconds) / 1_000_000

    async def take(self) -> bool:
        """Claim the current slot and the run lease; whether this worker runs now."""
        slot = int(await self._now() // self._interval)
        claim = self._client.set(f"{self._slots}{slot}", self._me, nx=True, px=int(self._interval * 2000) + 1000)
        if not await self._redis(claim):
            return False
        if not await self._redis(self._client.set(self._running, self._me, nx=True, px=self.lease_ms)):
            return False  # the last run is still going on somewhere: this slot is skipped
        self.slot = slot
        return True

    async def renew(self) -> bool:
        """Extend the run lease; ``False`` when this worker no longer holds it."""
        return bool(await self._redis(self._client.eval(_RENEW, 1, self._running, self._me, self.lease_ms)))

    async def release(self) -> None:
        await self._redis(self._client.eval(_RELEASE, 1, self._running, self._me))

    async def until_next_slot(self) -> float:
        """Seconds until the next slot begins, by Redis's clock."""
        now = await self._now()
        return (int(now // self._interval) + 1) * self._interval - now

    async def close(self) -> None:
        await self._client.aclose()
