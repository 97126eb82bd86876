"""``redis://host:port/db``: fan-out across worker processes and hosts.

Each channel is a Redis Stream (``tether:<namespace>:broadcast:<channel>``), trimmed to
about ``history`` messages: its ids are the messages' ids, a message is field
``m`` (and its event name, if any, ``e``), and what a subscriber missed is read
back with ``XRANGE``. Publishing is one ``XADD``,
from sync code (redis-py) or async code (one connection per event loop, the
command packed and publishes made together sent together: ``redis_publisher``); a message is JSON (the app's provider), never pickle.
A channel is any str: names are encoded with ``surrogatepass``, so one holding
a lone surrogate (valid JSON input) works here as it does on ``memory://``.

One listener per process (``redis_listener``) reads every channel that has a
subscriber here and hands each message to the broadcast's ``deliver``, which
only queues it; it reconnects by itself when Redis goes away, and catches up.
``healthy`` says whether it is connected, and each change is logged once and
sent as ``broadcast_health_changed``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import typing as t
import uuid

import redis

from ...signals import broadcast_health_changed
from ..cluster import ClusterTurns
from .errors import BroadcastUnavailable
from .history import Delivery, id_key
from .memory import Deliver
from .redis_listener import Listener, text, trimmed_after
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
        self.namespace = namespace
        self._deliver = deliver
        self._history = max(history, 1)
        self._dumps = dumps
        self._loads = loads
        self._prefix = f"tether:{namespace}:broadcast:"
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, encoding_errors=ENCODING_ERRORS
        )
        self._publishers: dict[asyncio.AbstractEventLoop, Publisher] = {}
        process = uuid.uuid4().hex
        #: The listener's (first) connection's name, as ``CLIENT LIST`` shows it.
        self.client_name = f"tether-broadcast-{process}"
        self._listener = Listener(
            url, self._prefix, f"tether:{namespace}:control:{process}", self.client_name, deliver, self._entry,
            self._set_healthy,
        )
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
        if isinstance(error, redis.ResponseError):
            return BroadcastUnavailable(f"The message was not published: Redis at {self.url} refused it ({error}).")
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
        return text(message_id)

    async def publish(self, channel: str, message: t.Any, event: str | None = None) -> str:
        return await self._publisher().publish(self.key(channel), self._fields(message, event))

    def _publisher(self) -> Publisher:
        """The running loop's connection."""
        self._forked()
        loop = asyncio.get_running_loop()
        publisher = self._publishers.get(loop)
        if publisher is None:
            publisher = self._publishers[loop] = Publisher(
                self.url, self._history, self._unavailable, f"{self.client_name}-publish"
            )
        return publisher

    def expire(self, channel: str, seconds: float) -> None:
        try:
            self._client.expire(self.key(channel), max(int(seconds), 1))
        except redis.RedisError as e:
            raise self._unavailable(e) from e

    def tail(self, channel: str) -> str | None:
        try:
            newest: t.Any = self._client.xrevrange(self.key(channel), count=1)
        except redis.RedisError as e:
            raise self._unreadable(e) from e
        return text(newest[0][0]) if newest else None

    async def atail(self, channel: str) -> str | None:
        try:
            newest: t.Any = await self._publisher().client.xrevrange(self.key(channel), count=1)
        except redis.RedisError as e:
            raise self._unreadable(e) from e
        return text(newest[0][0]) if newest else None

    def _unreadable(self, error: Exception) -> BroadcastUnavailable:
        return BroadcastUnavailable(f"The channel could not be read: Redis at {self.url} is unreachable ({error}).")

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
        return entries, key is None or trimmed_after(info, key)

    def _entry(self, channel: str, message_id: bytes | str, fields: dict[bytes, bytes]) -> Delivery:
        event = fields.get(b"e")
        return Delivery(channel, text(message_id), self._loads(fields[b"m"]), None if event is None else text(event))

    def _forked(self) -> None:
        """After a fork (gunicorn's ``--preload``), the child has no listener
        thread and must not share the parent's async connections."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._listener.forked()
            self._publishers = {}
            self.healthy = False

    def follow(self, channel: str, tail: str | None) -> None:
        self._forked()
        self._listener.follow(channel, tail)

    def unfollow(self, channel: str) -> None:
        self._listener.unfollow(channel)

    def position(self, channel: str) -> str | None:
        """The last id the listener read of ``channel`` (``None``: not followed)."""
        return self._listener.position(channel)

    def turns(self, name: str, interval: float) -> ClusterTurns:
        """Turns taken on this Redis, in this broadcast's namespace (``tether.live.cluster``)."""
        return ClusterTurns(self.url, self.namespace, name, interval)

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

