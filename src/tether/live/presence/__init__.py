"""Presence: who is in a channel, with each member's metadata (name, device),
across every worker and host on Redis.

A connection enters a channel for as long as it lives::

    async with app.presence.enter(room, user_id, {"name": name, "device": device}):
        await websocket.relay(app.broadcast.subscribe(room))

(``with`` in sync code: a sync WebSocket handler, an SSE source's generator.)
A member is counted once however many connections they have open: the join
event goes out on the channel when their first connection enters, the leave
when their last one leaves (``events``: through the broadcast, on the channel
itself). ``members(channel)`` (``await amembers(channel)``) says who is there,
from views, jobs and scripts.

``memory://`` keeps one process's presence. On ``redis://`` (``redis``), each
process heartbeats every ``ttl / 3`` seconds; a worker killed without a
goodbye has its members counted out of ``members()`` within ``ttl`` seconds
of its last heartbeat, and their leave events out within ``ttl + ttl / 3``
of its death (20 s with the default ``PRESENCE_TTL`` of 15 s). Keys:
``tether:<namespace>:presence:<channel>:conns`` and ``:counts``, and the
workers' ``tether:<namespace>:presence-workers`` and ``presence-worker:<id>``.
A plain script reads the app's: ``Presence("redis://...", namespace="shop")``.
"""

from __future__ import annotations

import asyncio
import json
import typing as t
import uuid
from urllib.parse import urlsplit

from ..broadcast import REDIS_SCHEMES, Broadcast
from .connection import Backend, Connection, Here
from .memory import MemoryPresence

__all__ = ["DEFAULT_TTL", "Here", "Presence"]

#: Seconds a worker's connections outlive its last heartbeat (``PRESENCE_TTL``).
DEFAULT_TTL = 15.0


class Presence:
    """Who is in each channel; see the module docstring. Made from a broadcast
    (whose channels carry the events, and whose URL and namespace it shares),
    or from a URL and namespace, as ``Broadcast(url, namespace=...)``."""

    def __init__(
        self,
        broadcast: Broadcast | str = "memory://",
        *,
        namespace: str | None = None,
        ttl: float = DEFAULT_TTL,
        dumps: t.Callable[[t.Any], str] = json.dumps,
        loads: t.Callable[[str | bytes], t.Any] = json.loads,
    ) -> None:
        if isinstance(broadcast, str):
            broadcast = Broadcast(broadcast, namespace=namespace, dumps=dumps, loads=loads)
        elif namespace is not None and namespace != broadcast.namespace:
            raise ValueError(f"Presence over a broadcast shares its namespace ({broadcast.namespace!r}), not {namespace!r}.")
        if not ttl > 0:
            raise ValueError(f"The presence TTL is a number of seconds above 0, not {ttl!r}.")
        #: Where join and leave events are published.
        self.broadcast = broadcast
        self.ttl = ttl
        self._dumps = dumps
        self.backend: Backend
        scheme = urlsplit(broadcast.url).scheme
        if scheme == "memory":
            self.backend = MemoryPresence(broadcast, loads)
        elif scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"Presence runs on a memory:// or a Redis broadcast, not on {scheme}:// ({type(broadcast.backend).__name__})."
            )
        else:
            # redis-py is an optional dependency (pip install "tether[redis]").
            from .redis import RedisPresence

            self.backend = RedisPresence(broadcast, ttl, loads)

    def enter(self, channel: str, member: str, meta: t.Any = None) -> Here:
        """A handle on one connection of ``member`` in ``channel``, with its
        ``meta`` (JSON: a name, a device). It enters with ``with`` / ``async
        with`` (or ``join()`` / ``await ajoin()``) and leaves on exit."""
        _check_name("channel", channel)
        _check_name("member id", member)
        try:
            encoded = self._dumps(meta)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Presence meta must be JSON-serializable: {e}") from e
        return Here(self.backend, Connection(channel, uuid.uuid4().hex, member, meta, encoded))

    def members(self, channel: str) -> dict[str, t.Any]:
        """Who is in ``channel``: each member id with the meta of their earliest
        connection still there, in that order. From sync code."""
        _check_name("channel", channel)
        return self.backend.members(channel)

    async def amembers(self, channel: str) -> dict[str, t.Any]:
        """:meth:`members` from async code."""
        _check_name("channel", channel)
        return await self.backend.amembers(channel)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Begin heartbeats and reaping (Redis), as a serving service; the first
        ``enter`` begins them too."""
        self.backend.start()

    async def stop(self) -> None:
        """Leave what is still here and stop heartbeating, as a serving service."""
        await asyncio.get_running_loop().run_in_executor(None, self.backend.close)

    def stop_at_exit(self) -> None:
        self.backend.close()

    def close(self) -> None:
        """Leave every connection still here and stop heartbeating."""
        self.backend.close()


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"A presence {what} is a str, not {type(value).__name__} ({value!r}).")
