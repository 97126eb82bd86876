"""The Redis broadcast's listener: one thread per process that reads every
channel with a subscriber here and hands what it reads to the broadcast's
``deliver``, which only queues it.

Channels are read in *shards* of at most :data:`SHARD_SIZE`, each by one
blocking ``XREAD`` on a connection of its own, woken by a control stream of its
own. A shard reads again each time one of its streams has news or its channels
change: so a join, a leave or a message costs a read of one shard, however
many channels the process follows (at 10,000 channels, 40 connections). A
read names every stream of its shard with its last id, so the shard keeps each
stream's part of the command ready (``Shard.keys``, ``Shard.ids``): a read
joins them, and only what a read brought changes them, rather than redis-py
encoding every argument anew in Python.

All a read brings goes to ``deliver`` in one call, so each event loop with
subscribers is handed the whole read at once (one wake-up per read, not one
per message), in the order Redis gave it. Following and unfollowing only change what a
shard reads; the shard is woken from the listener's own loop, so the caller
waits on no round trip.

A shard never stops while the process lives: when Redis goes away (a restart,
``CLIENT KILL``, a dropped connection) it reconnects with jittered backoff and
goes on from the last id it saw of each channel, so what was published
meanwhile and is still in the history arrives, in order, once (and a
:class:`Gap` where the history no longer covers the outage).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import typing as t

import redis
import redis.asyncio as aioredis

from .history import Delivery, Gap, id_key
from .memory import Deliver
from .redis_publisher import ENCODING_ERRORS, bulk

__all__ = ["SHARD_SIZE", "Listener", "bulk", "text", "trimmed_after"]

logger = logging.getLogger("tether.broadcast")

#: The most channels one read (one connection) names.
SHARD_SIZE = 256
#: ``XREAD BLOCK 10000 COUNT 1000 STREAMS``, as the command's first arguments.
XREAD_HEAD = b"$5\r\nXREAD\r\n$5\r\nBLOCK\r\n$5\r\n10000\r\n$5\r\nCOUNT\r\n$4\r\n1000\r\n$7\r\nSTREAMS\r\n"

#: Makes the Delivery of a stream entry (channel, id, fields); raises
#: ``KeyError``/``ValueError`` for an entry that is not tether's.
Entry = t.Callable[[str, t.Any, dict[bytes, bytes]], Delivery]
#: Told whether every shard that ever connected is connected (and why not).
Health = t.Callable[[bool, Exception | None], None]


class Shard:
    """Channels read by one ``XREAD``, with the last id read of each."""

    __slots__ = ("control", "name", "positions", "keys", "ids", "version", "read_version", "woken_version", "task")

    def __init__(self, control: str, name: str) -> None:
        self.control = control
        #: Its connection's name, as ``CLIENT LIST`` shows it.
        self.name = name
        self.positions: dict[str, str] = {}
        #: Each channel's stream key and last id as the ``XREAD`` names them
        #: (``bulk``), in the same order.
        self.keys: dict[str, bytes] = {}
        self.ids: dict[str, bytes] = {}
        #: Counts the changes to its channels; the change its current read
        #: has, and the change a wake was last sent for.
        self.version = 0
        self.read_version = -1
        self.woken_version = -1
        self.task: asyncio.Task[None] | None = None


class Listener:
    """See the module docstring."""

    def __init__(self, url: str, prefix: str, control: str, name: str, deliver: Deliver, entry: Entry,
                 health: Health) -> None:
        self.url = url
        self._prefix = prefix
        self._control = control
        #: The first shard's connection name; the others' add ``-<n>``.
        self.name = name
        self._deliver = deliver
        self._entry = entry
        self._health = health
        self._lock = threading.Lock()
        self._shards: list[Shard] = []
        self._shard_of: dict[str, Shard] = {}
        #: Shards with room for another channel.
        self._roomy: list[Shard] = []
        self._failed: set[Shard] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waker: t.Any = None

    def forked(self) -> None:
        """In a forked child: no thread, loop or connection is the child's."""
        with self._lock:
            self._thread = self._loop = self._waker = None
            self._failed.clear()
            for shard in self._shards:
                shard.task = None
                shard.read_version = shard.woken_version = -1

    def follow(self, channel: str, tail: str | None) -> None:
        """Read ``channel`` after ``tail`` (no round trip)."""
        with self._lock:
            if channel in self._shard_of:
                return
            shard = self._roomy[-1] if self._roomy else self._new_shard()
            shard.positions[channel] = tail or "0-0"
            shard.keys[channel] = bulk(self._prefix + channel)
            shard.ids[channel] = bulk(tail or "0-0")
            shard.version += 1
            self._shard_of[channel] = shard
            if len(shard.positions) >= SHARD_SIZE:
                self._roomy.remove(shard)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tether-broadcast-listener", daemon=True)
                self._thread.start()
            loop = self._loop
        self._wake(loop, shard)

    def position(self, channel: str) -> str | None:
        """The last id read of ``channel``, or where it was followed from; no
        round trip. What a read brings past it is handed to ``deliver`` after
        the position moved, so a subscriber registered with the broadcast
        from this position on gets every later message."""
        with self._lock:
            shard = self._shard_of.get(channel)
            return None if shard is None else shard.positions[channel]

    def unfollow(self, channel: str) -> None:
        with self._lock:
            shard = self._shard_of.pop(channel, None)
            if shard is None:
                return
            del shard.positions[channel], shard.keys[channel], shard.ids[channel]
            shard.version += 1
            if shard not in self._roomy:
                self._roomy.append(shard)
            loop = self._loop
        self._wake(loop, shard)

    def _new_shard(self) -> Shard:
        number = len(self._shards)
        suffix = f"-{number}" if number else ""
        shard = Shard(f"{self._control}{suffix}", f"{self.name}{suffix}")
        self._shards.append(shard)
        self._roomy.append(shard)
        return shard

    def _wake(self, loop: asyncio.AbstractEventLoop | None, shard: Shard) -> None:
        if loop is None:  # starting: it starts every shard, whose first read has all its channels
            return
        try:
            loop.call_soon_threadsafe(self._signal, shard)
        except RuntimeError:  # the process is exiting
            pass

    def _signal(self, shard: Shard) -> None:
        """On the listener's loop: start a new shard, or wake its read unless
        that read, or a wake sent since, has every change so far."""
        if shard.task is None:
            shard.task = asyncio.ensure_future(self._read_forever(shard))
            return
        version = shard.version
        if max(shard.read_version, shard.woken_version) >= version:
            return
        shard.woken_version = version
        asyncio.ensure_future(self._send_wake(shard.control))

    async def _send_wake(self, control: str) -> None:
        if self._waker is None:  # a connection of its own: the shards' are blocked in their reads
            self._waker = aioredis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        try:
            pipeline = self._waker.pipeline(transaction=False)
            pipeline.xadd(control, {"w": "1"}, maxlen=1)
            pipeline.expire(control, 3600)
            await pipeline.execute()
        except redis.RedisError:
            pass  # the shard is reconnecting; it reads its channels anew then

    def _run(self) -> None:
        asyncio.run(self._start())

    async def _start(self) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            shards = list(self._shards)
        for shard in shards:
            if shard.task is None:
                shard.task = asyncio.ensure_future(self._read_forever(shard))
        await asyncio.get_running_loop().create_future()  # the shards run as long as the process

    async def _read_forever(self, shard: Shard) -> None:
        backoff = 0.1
        control_id = "$"
        while True:
            client: t.Any = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=None, encoding_errors=ENCODING_ERRORS,
                single_connection_client=True,
            )
            try:
                await client.client_setname(shard.name)
                if control_id == "$":
                    newest = await client.xrevrange(shard.control, count=1)
                    control_id = text(newest[0][0]) if newest else "0-0"
                else:  # a reconnection: say so where the history no longer covers the outage
                    await self._report_gaps(client, shard)
                self._connected(shard, None)
                backoff = 0.1
                while True:
                    control_id = await self._read(client.connection, shard, control_id)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                self._connected(shard, e)
            except Exception as e:
                logger.exception("The Redis broadcast listener failed; it starts again.")
                self._connected(shard, e)
            finally:
                await client.aclose()
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 5.0)

    async def _read(self, connection: t.Any, shard: Shard, control_id: str) -> str:
        """One blocking read of ``shard``, delivered whole; the control stream's
        id after it. The command is sent as it is kept (see the module docstring)."""
        with self._lock:
            command = b"".join((
                b"*%d\r\n" % (8 + 2 * len(shard.keys)), XREAD_HEAD, bulk(shard.control), *shard.keys.values(),
                bulk(control_id), *shard.ids.values(),
            ))
            shard.read_version = shard.version
        await connection.send_packed_command(command, check_health=False)
        read: t.Any = await connection.read_response()
        batch: list[Delivery | Gap] = []
        for stream, messages in (read.items() if isinstance(read, dict) else read or ()):  # RESP3: a map
            name = text(stream)
            if name == shard.control:
                control_id = text(messages[-1][0])
            else:
                self._take(shard, name[len(self._prefix):], messages, batch)
        if batch:
            self._deliver(batch)
        return control_id

    def _connected(self, shard: Shard, error: Exception | None) -> None:
        """A shard connected (``error`` is ``None``) or lost its connection."""
        if error is None:
            self._failed.discard(shard)
        else:
            self._failed.add(shard)
        self._health(not self._failed, error)

    async def _report_gaps(self, client: t.Any, shard: Shard) -> None:
        with self._lock:
            positions = dict(shard.positions)
        for channel, position in positions.items():
            seen = id_key(position) or (0, 0)
            try:
                gap = trimmed_after(await client.xinfo_stream(self._prefix + channel), seen)
            except redis.ResponseError:  # the stream is gone: a restart that kept nothing
                gap = seen > (0, 0)
            if gap:
                self._deliver((Gap(channel, position),))

    def _take(self, shard: Shard, channel: str, messages: list[t.Any], batch: list[Delivery | Gap]) -> None:
        """Add a stream's messages from a read (``[id, [field, value, ...]]``
        each) to ``batch``, and move the shard's position past them."""
        last = text(messages[-1][0])
        with self._lock:
            if self._shard_of.get(channel) is not shard:
                return  # unfollowed meanwhile (and maybe followed again, by another shard)
            shard.positions[channel] = last
            shard.ids[channel] = bulk(last)
        for message_id, flat in messages:
            flat = flat or []
            try:
                batch.append(self._entry(channel, message_id, dict(zip(flat[::2], flat[1::2], strict=True))))
            except (KeyError, ValueError):
                logger.warning("A message on broadcast channel %r is not tether's; skipped.", channel)


def text(value: bytes | str) -> str:
    return value.decode("utf-8", ENCODING_ERRORS) if isinstance(value, bytes) else value


def trimmed_after(info: t.Any, key: tuple[int, int]) -> bool:
    """Whether the stream (``XINFO STREAM``) may have trimmed messages newer
    than ``key``: some were trimmed, and its oldest kept one is newer."""
    if info.get("entries-added", 0) <= info.get("length", 0):
        return False
    first = info.get("first-entry")
    return first is None or (id_key(text(first[0])) or (0, 0)) > key
