"""``redis://host:port/db``: fan-out across worker processes and hosts.

Each channel is a Redis Stream (``tether:<namespace>:broadcast:<channel>``), trimmed to
about ``history`` messages: its ids are the messages' ids, and what a
subscriber missed is read back with ``XRANGE``. Publishing is one ``XADD``,
from sync code (redis-py) or async code (``redis.asyncio``, batched per event
loop by ``redis_publisher``); a message is JSON (the app's provider), never pickle.
A channel is any str: names are encoded with ``surrogatepass``, so one holding
a lone surrogate (valid JSON input) works here as it does on ``memory://``.

One listener per process reads every channel that has a subscriber here, with
one blocking ``XREAD`` on one connection, and hands each message to the
broadcast's ``deliver``, which only queues it. It never stops while the
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
from .history import Entry, Gap, id_key
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

    def publish_now(self, channel: str, message: t.Any) -> str:
        data = self._encode(message)
        try:
            message_id: t.Any = self._client.xadd(self.key(channel), {"m": data}, maxlen=self._history, approximate=True)
        except redis.RedisError as e:
            raise self._unavailable(e) from e
        return _text(message_id)

    async def publish(self, channel: str, message: t.Any) -> str:
        data = self._encode(message)
        self._forked()
        loop = asyncio.get_running_loop()
        publisher = self._publishers.get(loop)
        if publisher is None:
            publisher = self._publishers[loop] = Publisher(self.url, self._history, self._unavailable)
        return await publisher.publish(self.key(channel), data)

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

    def catch_up(self, channel: str, last_id: str) -> tuple[list[Entry], bool]:
        key = id_key(last_id)
        if key is None:
            start = "-"
        else:
            start = f"({key[0]}-{key[1]}"
        try:
            info: t.Any = self._client.xinfo_stream(self.key(channel))
            found: t.Any = self._client.xrange(self.key(channel), min=start)
        except redis.ResponseError:  # no such stream: nothing was published
            return [], key is None
        except redis.RedisError:
            return [], True
        entries = [self._entry(message_id, fields) for message_id, fields in found]
        return entries, key is None or _trimmed_after(info, key)

    def _entry(self, message_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
        text = _text(message_id)
        return (id_key(text) or (0, 0), text, self._loads(fields[b"m"]))

    def _forked(self) -> None:
        """After a fork (gunicorn's ``--preload``), the child has no listener
        thread and must not share the parent's async connections."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._listener = None
            self._publishers = {}
            self.healthy = False

    def follow(self, channel: str) -> None:
        self._forked()
        tail = self.tail(channel) or "0-0"  # a round trip: not under the lock the listener takes
        with self._lock:
            self._positions.setdefault(channel, tail)
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="tether-broadcast-listener", daemon=True)
                self._listener.start()
        self._wake()

    def unfollow(self, channel: str) -> None:
        with self._lock:
            self._positions.pop(channel, None)
        self._wake()

    def _wake(self) -> None:
        """Make the listener read its channels anew (one was added or removed)."""
        try:
            self._client.xadd(self._control, {"w": "1"}, maxlen=1)
            self._client.expire(self._control, 3600)
        except redis.RedisError:
            pass  # the listener is reconnecting; it reads the channels anew then

    def _listen(self) -> None:
        asyncio.run(self._listen_forever())

    async def _listen_forever(self) -> None:
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
                self._deliver(channel, (seen, position, Gap(channel, position)))

    def _hand_over(self, channel: str, messages: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        with self._lock:
            if channel not in self._positions:
                return  # unfollowed meanwhile
            self._positions[channel] = _text(messages[-1][0])
        for message_id, fields in messages:
            try:
                entry = self._entry(message_id, fields)
            except (KeyError, ValueError):
                logger.warning("A message on broadcast channel %r is not tether's; skipped.", channel)
                continue
            self._deliver(channel, entry)

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
