"""``redis://`` presence: who is in a channel across every worker and host.

Each connection is a field of its channel's hash, added and removed by Lua
scripts (``scripts``), which also keep each member's number of connections:
so "first connection in" (join) and "last one out" (leave) are decided
atomically however many processes enter and leave at once.

A worker process registers itself with a deadline, ``ttl`` seconds ahead by
Redis's clock, and one thread per process pushes it back every ``ttl / 3``
seconds: one script call per interval for all its connections. The same call
reaps: it removes the connections of every worker past its deadline and
returns the members who lost their last connection, whose leaves this process
then announces. Any live process may reap, several at once: each expired
connection is removed, and its leave announced, once.

So a worker killed without a goodbye (SIGKILL, a lost host) has its members
counted out by ``members()`` as soon as its deadline passes, at most ``ttl``
seconds after its last heartbeat, and their leave events go out at the next
reap: within ``ttl + ttl / 3`` seconds of its death (20 s with the default
``PRESENCE_TTL`` of 15), as long as some process using presence runs.

A worker that was reaped while alive (stalled longer than the TTL, or Redis
lost its keys) sees it at its next heartbeat or join and adds its connections
again. A leave that cannot reach Redis is retried by the keeper.

The keeper is a thread per process running an event loop of its own; async
callers' scripts go through one batching connection per event loop
(``batch``), sync callers' through a bounded pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import typing as t
import uuid
import weakref

import redis

from ..broadcast import Broadcast, BroadcastUnavailable
from ..broadcast.redis_publisher import ENCODING_ERRORS
from .batch import Batcher
from .connection import Connection
from .events import tell, tell_async
from .scripts import HEARTBEAT, JOIN, LEAVE, MEMBERS, Script

__all__ = ["RedisPresence"]

logger = logging.getLogger("tether.presence")

#: At most this many expired connections are removed by one script call, so
#: that a reap never holds Redis long; the reaper calls again at once.
REAP_BUDGET = 1000


class RedisPresence:
    """See the module docstring and ``connection.Backend``."""

    def __init__(self, broadcast: Broadcast, ttl: float, loads: t.Callable[[str], t.Any]) -> None:
        self._broadcast = broadcast
        self._loads = loads
        self.url = broadcast.url
        namespace = broadcast.namespace
        self._prefix = f"tether:{namespace}:presence:"
        self._workers = f"tether:{namespace}:presence-workers"
        self._worker_prefix = f"tether:{namespace}:presence-worker:"
        self._ttl_ms = max(int(ttl * 1000), 1)
        #: Seconds between heartbeats.
        self.interval = ttl / 3
        # Sync callers (threads) wait for one of a bounded set of connections.
        self._client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
            self.url, max_connections=64, timeout=20, socket_connect_timeout=2, socket_timeout=5,
            encoding_errors=ENCODING_ERRORS,
        ))
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Batcher] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        #: This process's connections, by id, once Redis has them.
        self._here: dict[str, Connection] = {}
        #: Connections left here whose removal did not reach Redis: retried.
        self._pending: dict[str, Connection] = {}
        self._rejoin = False
        self._thread: threading.Thread | None = None
        #: The keeper thread's loop, and what wakes it, while it runs.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signal: asyncio.Event | None = None
        self._closing = False
        self._pid = os.getpid()
        #: This worker process's id in Redis.
        self.worker = uuid.uuid4().hex

    def _conns(self, channel: str) -> str:
        return f"{self._prefix}{channel}:conns"

    def _counts(self, channel: str) -> str:
        return f"{self._prefix}{channel}:counts"

    def _unavailable(self, error: Exception) -> BroadcastUnavailable:
        return BroadcastUnavailable(f"Presence did not reach Redis at {self.url} ({error}).")

    def _forked(self) -> None:
        """After a fork the child is a worker of its own, with no thread yet."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.worker = uuid.uuid4().hex
            self._here, self._pending, self._thread, self._loop = {}, {}, None, None
            self._batchers = weakref.WeakKeyDictionary()

    async def _call(self, script: Script, keys: list[str], args: list[t.Any]) -> t.Any:
        """Run ``script`` from async code, batched with the loop's other calls."""
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = Batcher(self.url)
        return await batcher.run(script, keys, args)

    def _join_call(self, connection: Connection) -> tuple[list[str], list[t.Any]]:
        field = connection.id + connection.member
        keys = [self._conns(connection.channel), self._counts(connection.channel), self._workers,
                self._worker_prefix + self.worker]
        return keys, [field, connection.member, connection.encoded, self.worker, self._ttl_ms, connection.channel]

    def _leave_call(self, connection: Connection) -> tuple[list[str], list[t.Any]]:
        keys = [self._conns(connection.channel), self._counts(connection.channel), self._worker_prefix + self.worker]
        return keys, [connection.id + connection.member, connection.member]

    def _entering(self) -> bool:
        """Whether other connections are here already."""
        self._forked()
        self.start()
        with self._lock:
            return bool(self._here)

    def _entered(self, connection: Connection, reply: t.Any, others: bool) -> bool:
        """Note ``connection`` as here once Redis has it (so that the heartbeat
        never adds it again before its own join did)."""
        first, known = int(reply[0]), int(reply[1])
        with self._lock:
            self._here[connection.id] = connection
        if others and not known:
            logger.warning(
                "Presence worker %s was reaped while alive (stalled past its TTL, or Redis lost its keys): "
                "its connections are added again.", self.worker,
            )
            with self._lock:
                self._rejoin = True
            self._wake()
        return bool(first)

    def join(self, connection: Connection) -> bool:
        others = self._entering()
        try:
            reply = JOIN(self._client, *self._join_call(connection))
        except redis.RedisError as e:
            self._failed_join(connection)
            raise self._unavailable(e) from e
        first = self._entered(connection, reply, others)
        if first:
            try:
                tell(self._broadcast, connection.channel, "join", connection.member, connection.meta)
            except BaseException:
                self._failed_join(connection)
                raise
        return first

    async def ajoin(self, connection: Connection) -> bool:
        others = self._entering()
        try:
            reply = await self._call(JOIN, *self._join_call(connection))
        except (redis.RedisError, asyncio.CancelledError) as e:
            self._failed_join(connection)
            if isinstance(e, redis.RedisError):
                raise self._unavailable(e) from e
            raise
        first = self._entered(connection, reply, others)
        if first:
            try:
                await tell_async(self._broadcast, connection.channel, "join", connection.member, connection.meta)
            except BaseException:  # cancelled: the handle never enters, so it is left here
                self._failed_join(connection)
                raise
        return first

    def _failed_join(self, connection: Connection) -> None:
        """A join that failed once it may have reached Redis: the connection is
        left, by the keeper thread, rather than forgotten."""
        self._leave_later(connection, None)

    def leave(self, connection: Connection) -> None:
        with self._lock:
            self._here.pop(connection.id, None)
        try:
            last = LEAVE(self._client, *self._leave_call(connection))
        except redis.RedisError as e:
            self._leave_later(connection, e)
            return
        if last == 1:
            tell(self._broadcast, connection.channel, "leave", connection.member, connection.meta)

    async def aleave(self, connection: Connection) -> None:
        with self._lock:
            self._here.pop(connection.id, None)
        try:
            last = await self._call(LEAVE, *self._leave_call(connection))
        except asyncio.CancelledError:
            self._leave_later(connection, None)
            raise
        except redis.RedisError as e:
            self._leave_later(connection, e)
            return
        if last == 1:
            await tell_async(self._broadcast, connection.channel, "leave", connection.member, connection.meta)

    def _leave_later(self, connection: Connection, error: Exception | None) -> None:
        if error is not None:
            logger.warning(
                "The leave of %r from channel %r did not reach Redis (%s); it is retried.",
                connection.member, connection.channel, error,
            )
        with self._lock:
            self._here.pop(connection.id, None)
            self._pending[connection.id] = connection
        self._wake()

    def members(self, channel: str) -> dict[str, t.Any]:
        try:
            rows = MEMBERS(self._client, [self._conns(channel), self._workers], [])
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        return self._present(rows)

    async def amembers(self, channel: str) -> dict[str, t.Any]:
        try:
            rows = await self._call(MEMBERS, [self._conns(channel), self._workers], [])
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        return self._present(rows)

    def _present(self, rows: list[bytes]) -> dict[str, t.Any]:
        """Each member with the meta of their earliest connection, in the order
        of those connections."""
        connections = sorted(
            (_text(value[32:48]), _text(field), _text(value[48:]))
            for field, value in zip(rows[::2], rows[1::2], strict=True)
        )
        found: dict[str, t.Any] = {}
        for _, field, meta in connections:
            member = field[32:]
            if member not in found:
                found[member] = self._loads(meta)
        return found

    def start(self) -> None:
        """Start the keeper thread (heartbeats, reaping, retries), once per process."""
        self._forked()
        with self._lock:
            self._closing = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=asyncio.run, args=(self._keep(),), name="tether-presence", daemon=True
                )
                self._thread.start()

    def _wake(self) -> None:
        """Make the keeper beat now (from any thread)."""
        loop, signal = self._loop, self._signal
        if loop is not None and signal is not None:
            try:
                loop.call_soon_threadsafe(signal.set)
            except RuntimeError:  # the keeper has just stopped
                pass

    async def _keep(self) -> None:
        self._signal = signal = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        failing = False
        try:
            while not self._closing:
                try:
                    more = await self._beat()
                except redis.RedisError as e:
                    if not failing:
                        logger.warning("Presence cannot reach Redis at %s (%s); it tries again.", self.url, e)
                    failing, more = True, False
                except Exception:
                    logger.exception("A presence heartbeat failed; the next one comes in %s s.", self.interval)
                    more = False
                else:
                    if failing:
                        logger.info("Presence reaches Redis at %s again.", self.url)
                    failing = False
                if not more:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(signal.wait(), self.interval)
                    signal.clear()
        finally:
            self._loop = self._signal = None
            batcher = self._batchers.pop(asyncio.get_running_loop(), None)
            if batcher is not None:
                await batcher.close()

    async def _beat(self) -> bool:
        """One heartbeat and reap; whether expired connections remain."""
        await self._retry_leaves()
        with self._lock:
            register = bool(self._here)
            rejoin, self._rejoin = self._rejoin, False
        args = [self.worker, self._ttl_ms, 1 if register else 0, self._prefix, self._worker_prefix, REAP_BUDGET]
        reply = await self._call(HEARTBEAT, [self._workers], args)
        known, more, found = int(reply[0]), int(reply[1]), reply[2:]
        await asyncio.gather(*(
            tell_async(self._broadcast, _text(channel), "leave", _text(field)[32:], self._loads(_text(value[48:])))
            for channel, field, value in zip(found[::3], found[1::3], found[2::3], strict=True)
        ))
        if rejoin or not known:
            try:
                await self._add_again()
            except redis.RedisError:
                with self._lock:
                    self._rejoin = True
                raise
        return bool(more)

    async def _add_again(self) -> None:
        """Add this process's connections again after it was reaped. One that
        left meanwhile is removed again: the check comes after its join."""
        with self._lock:
            connections = list(self._here.values())
        replies = await asyncio.gather(*(self._call(JOIN, *self._join_call(c)) for c in connections))
        for connection, reply in zip(connections, replies, strict=True):
            if int(reply[0]):
                await tell_async(self._broadcast, connection.channel, "join", connection.member, connection.meta)
            with self._lock:
                gone = connection.id not in self._here
            if gone:
                await self.aleave(connection)

    async def _retry_leaves(self) -> None:
        """Remove the connections whose leave failed; those that fail again are
        kept for the next round, and the first failure is raised."""
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        replies = await asyncio.gather(
            *(self._call(LEAVE, *self._leave_call(c)) for c in pending), return_exceptions=True
        )
        failed = [(c, r) for c, r in zip(pending, replies, strict=True) if isinstance(r, BaseException)]
        with self._lock:
            self._pending.update((c.id, c) for c, _ in failed)
        for connection, reply in zip(pending, replies, strict=True):
            if reply == 1:
                await tell_async(self._broadcast, connection.channel, "leave", connection.member, connection.meta)
        if failed:
            raise failed[0][1]

    def close(self) -> None:
        """Stop the keeper thread, leave every connection still here and
        unregister this worker. What cannot reach Redis now expires: it is
        reaped after the TTL."""
        with self._lock:
            self._closing = True
            thread, self._thread = self._thread, None
        self._wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        with self._lock:
            left = [*self._here.values(), *self._pending.values()]
            self._here, self._pending = {}, {}
        try:
            for connection in left:
                if LEAVE(self._client, *self._leave_call(connection)) == 1:
                    tell(self._broadcast, connection.channel, "leave", connection.member, connection.meta)
            self._client.zrem(self._workers, self.worker)
        except redis.RedisError:
            pass


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", ENCODING_ERRORS) if isinstance(value, bytes) else value
