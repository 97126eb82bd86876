"""``redis://host:port/db``: fan-out across worker processes and hosts.

Each channel is a Redis Stream (``tether:<namespace>:broadcast:<channel>``), trimmed to
about ``history`` messages: its ids are the messages' ids, a message is field
``m`` (and its event name, if any, ``e``), and what a subscriber missed is read
back with ``XRANGE``. Publishing is one ``XADD``,
from sync code (redis-py) or async code (``redis.asyncio``, batched per event
loop by ``redis_publisher``); a message is JSON (the app's provider), never pickle.
A channel is any str: names are encoded with ``surrogatepass``, so one holding
a lone surrogate (valid JSON input) works here as it does on ``memory://``.

One listener per process reads every channel that has a subscriber here, with
one blocking ``XREAD`` on one connection, and hands each message to the
broadcast's ``deliver``, which only queues it. Following a channel or no
longer following one changes what it reads without a round trip for the caller:
the listener's own loop wakes it (an ``XADD`` to a control stream it reads too).
It never stops while the
process lives: when Redis goes away (a restart, ``CLIENT KILL``, a dropped
connection) it reconnects with jittered backoff and goes on from the last id it
saw of each channel, so what was published meanwhile and is still in the
history arrives, in order, once. ``healthy`` says whether it is connected, and
each change is logged once and sent as ``broadcast_health_changed``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import typing as t
import uuid

import redis
import redis.asyncio as aioredis

from ...signals import broadcast_health_changed
from .errors import BroadcastUnavailable
from .history import Delivery, Gap, id_key
from .memory import Deliver
from .redis_publisher import ENCODING_ERRORS, Publisher

__all__ = ["RedisBackend"]

logger = logging.getLogger("tether.broadcast")


class RedisBackend:
    """See the module docstring."""

    def __init__(
        self,
        url: str,
        namespace: str,
        deliver: Deliver,
        history: int,
        dumps: t.Callable[[t.Any], str],
        loads: t.Callable[[str | bytes], t.Any],
    ) -> None:
        self.url = url
        self._deliver = deliver
        self._history = max(history, 1)
        self._dumps = dumps
        self._loads = loads
        self._prefix = f"tether:{namespace}:broadcast:"
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, encoding_errors=ENCODING_ERRORS
        )
        self._publishers: dict[asyncio.AbstractEventLoop, Publisher] = {}
        self._lock = threading.Lock()
        #: The channels read here, and the id of the last message read of each.
        self._positions: dict[str, str] = {}
        #: Counts the changes to the channels read, and the change the listener's
        #: current read has (both are compared on the listener's loop, to wake it).
        self._version = 0
        self._read_version = -1
        self._woken_version = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waker: t.Any = None
        process = uuid.uuid4().hex
        self._control = f"tether:{namespace}:control:{process}"
        #: The listener connection's name, as ``CLIENT LIST`` shows it.
        self.client_name = f"tether-broadcast-{process}"
        self._listener: threading.Thread | None = None
        self._pid = os.getpid()
        self.healthy = False

    def key(self, channel: str) -> str:
        """The stream of ``channel``, in this broadcast's namespace."""
        return self._prefix + channel

    def _encode(self, message: t.Any) -> str:
        try:
            return self._dumps(message)
        except (TypeError, ValueError) as e:
            raise TypeError(f"A broadcast message must be JSON-serializable: {e}") from e

    def _unavailable(self, error: Exception) -> BroadcastUnavailable:
        return BroadcastUnavailable(f"The message was not published: Redis at {self.url} is unreachable ({error}).")

    def _fields(self, message: t.Any, event: str | None) -> dict[str, str]:
        data = self._encode(message)
        return {"m": data} if event is None else {"m": data, "e": event}

    def publish_now(self, channel: str, message: t.Any, event: str | None = None) -> str:
        fields: t.Any = self._fields(message, event)
        try:
            message_id: t.Any = self._client.xadd(self.key(channel), fields, maxlen=self._history, approximate=True)
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        return _text(message_id)

    async def publish(self, channel: str, message: t.Any, event: str | None = None) -> str:
        fields = self._fields(message, event)
        self._forked()
        loop = asyncio.get_running_loop()
        publisher = self._publishers.get(loop)
        if publisher is None:
            publisher = self._publishers[loop] = Publisher(self.url, self._history, self._unavailable)
        return await publisher.publish(self.key(channel), fields)

    def expire(self, channel: str, seconds: float) -> None:
        try:
            self._client.expire(self.key(channel), max(int(seconds), 1))
        except redis.RedisError as e:
            raise self._unavailable(e) from e

    def tail(self, channel: str) -> str | None:
        try:
            newest: t.Any = self._client.xrevrange(self.key(channel), count=1)
        except redis.RedisError:
            return None
        return _text(newest[0][0]) if newest else None

    def catch_up(self, channel: str, last_id: str) -> tuple[list[Delivery], bool]:
        key = id_key(last_id)
        start = "-" if key is None else f"({key[0]}-{key[1]}"
        try:
            pipeline = self._client.pipeline(transaction=False)
            pipeline.xinfo_stream(self.key(channel))
            pipeline.xrange(self.key(channel), min=start)
            info, found = pipeline.execute()
        except redis.ResponseError:  # no such stream: nothing was published
            return [], key is None
        except redis.RedisError:
            return [], True
        entries = [self._entry(channel, message_id, fields) for message_id, fields in found]
        return entries, key is None or _trimmed_after(info, key)

    def _entry(self, channel: str, message_id: bytes | str, fields: dict[bytes, bytes]) -> Delivery:
        event = fields.get(b"e")
        return Delivery(channel, _text(message_id), self._loads(fields[b"m"]), None if event is None else _text(event))

    def _forked(self) -> None:
        """After a fork (gunicorn's ``--preload``), the child has no listener
        thread and must not share the parent's async connections."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._listener = None
            self._loop = None
            self._waker = None
            self._publishers = {}
            self.healthy = False

    def follow(self, channel: str, tail: str | None) -> None:
        self._forked()
        with self._lock:
            self._positions.setdefault(channel, tail or "0-0")
            self._version += 1
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="tether-broadcast-listener", daemon=True)
                self._listener.start()
        self._wake()

    def unfollow(self, channel: str) -> None:
        with self._lock:
            self._positions.pop(channel, None)
            self._version += 1
        self._wake()

    def _wake(self) -> None:
        """Make the listener read its channels anew (one was added or removed),
        from its own loop: the caller waits on no round trip."""
        loop = self._loop
        if loop is None:  # starting: its first read has every channel
            return
        try:
            loop.call_soon_threadsafe(self._signal)
        except RuntimeError:  # the process is exiting
            pass

    def _signal(self) -> None:
        """On the listener's loop: wake its read unless that read, or a wake
        sent since, has every change so far."""
        version = self._version
        if max(self._read_version, self._woken_version) >= version:
            return
        self._woken_version = version
        asyncio.ensure_future(self._send_wake())

    async def _send_wake(self) -> None:
        if self._waker is None:  # a connection of its own: the listener's is blocked in its read
            self._waker = aioredis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)
        try:
            pipeline = self._waker.pipeline(transaction=False)
            pipeline.xadd(self._control, {"w": "1"}, maxlen=1)
            pipeline.expire(self._control, 3600)
            await pipeline.execute()
        except redis.RedisError:
            pass  # the listener is reconnecting; it reads the channels anew then

    def _listen(self) -> None:
        asyncio.run(self._listen_forever())

    async def _listen_forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        backoff = 0.1
        control_id = "$"
        while True:
            client: t.Any = aioredis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=None, encoding_errors=ENCODING_ERRORS
            )
            try:
                await client.client_setname(self.client_name)
                if control_id == "$":
                    newest = await client.xrevrange(self._control, count=1)
                    control_id = _text(newest[0][0]) if newest else "0-0"
                else:  # a reconnection: say so where the history no longer covers the outage
                    await self._report_gaps(client)
                self._set_healthy(True)
                backoff = 0.1
                while True:
                    with self._lock:
                        streams = {self._control: control_id, **{self.key(c): p for c, p in self._positions.items()}}
                        self._read_version = self._version
                    read: t.Any = await client.xread(streams, block=10_000, count=1000)
                    for stream, messages in read or ():
                        name = _text(stream)
                        if name == self._control:
                            control_id = _text(messages[-1][0])
                            continue
                        self._hand_over(name[len(self._prefix):], messages)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                self._set_healthy(False, e)
            except Exception:
                logger.exception("The Redis broadcast listener failed; it starts again.")
                self._set_healthy(False)
            finally:
                await client.aclose()
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, 5.0)

    async def _report_gaps(self, client: t.Any) -> None:
        with self._lock:
            positions = dict(self._positions)
        for channel, position in positions.items():
            seen = id_key(position) or (0, 0)
            try:
                gap = _trimmed_after(await client.xinfo_stream(self.key(channel)), seen)
            except redis.ResponseError:  # the stream is gone: a restart that kept nothing
                gap = seen > (0, 0)
            if gap:
                self._deliver(Gap(channel, position))

    def _hand_over(self, channel: str, messages: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        with self._lock:
            if channel not in self._positions:
                return  # unfollowed meanwhile
            self._positions[channel] = _text(messages[-1][0])
        for message_id, fields in messages:
            try:
                delivery = self._entry(channel, message_id, fields)
            except (KeyError, ValueError):
                logger.warning("A message on broadcast channel %r is not tether's; skipped.", channel)
                continue
            self._deliver(delivery)

    def _set_healthy(self, healthy: bool, error: Exception | None = None) -> None:
        if healthy == self.healthy:
            return
        self.healthy = healthy
        if healthy:
            logger.info("The broadcast listener is connected to Redis at %s.", self.url)
        else:
            logger.warning(
                "The broadcast listener lost Redis at %s (%s); it reconnects and catches up.", self.url, error
            )
        if broadcast_health_changed.receivers:
            broadcast_health_changed.send(self, healthy=healthy)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", ENCODING_ERRORS) if isinstance(value, bytes) else value


def _trimmed_after(info: t.Any, key: tuple[int, int]) -> bool:
    """Whether the stream (``XINFO STREAM``) may have trimmed messages newer
    than ``key``: some were trimmed, and its oldest kept one is newer."""
    if info.get("entries-added", 0) <= info.get("length", 0):
        return False
    first = info.get("first-entry")
    return first is None or (id_key(_text(first[0])) or (0, 0)) > key
