"""Live fan-out: ``Broadcast.publish(channel, message)`` reaches every current
``subscribe(channel)``.

Each subscription has a bounded queue of its own (``subscription``), iterated
with ``async for`` or ``for``; it ends, unsubscribed, when closed (leaving its
``with`` / ``async with`` block, or its consumer stopping, as when an
EventStream's client goes away).

Every message gets an id, and each channel keeps a bounded history
(``history``): ``subscribe(channel, last_id=...)`` first replays what came
after ``last_id``, then goes live, with no gap and no duplicate; when
``last_id`` is older than the history, a :class:`Gap` comes first. An
``EventStream`` over a subscription sends the ids as SSE ``id:`` lines, so a
browser that reconnects with ``Last-Event-ID`` resumes where it stopped.

A backend gives ids, keeps the history and carries published messages to
``deliver(channel, entry)``, which fans each out to that channel's
subscriptions in this process. It offers ``publish(channel, message)``
(async), ``publish_now(channel, message)`` (sync, from any thread) and
``join(channel, last_id, joined)``. ``memory://`` (``memory``) delivers
in-process, at once.
"""

from __future__ import annotations

import threading
import typing as t
from urllib.parse import urlsplit

from .history import Entry, Gap, id_key
from .memory import Joined, MemoryBackend
from .subscription import OVERFLOW_POLICIES, SubscriberTooSlow, Subscription

__all__ = ["Backend", "Broadcast", "Gap", "MemoryBackend", "SubscriberTooSlow", "Subscription"]


class Backend(t.Protocol):
    """Gives ids, keeps the history, carries messages to the broadcast's ``deliver``."""

    async def publish(self, channel: str, message: t.Any) -> str: ...

    def publish_now(self, channel: str, message: t.Any) -> str: ...

    def join(self, channel: str, last_id: str | None, joined: Joined) -> None: ...


class Broadcast:
    """Publish to channels and subscribe to them; see the module docstring."""

    def __init__(
        self, url: str = "memory://", *, maxsize: int = 100, overflow: str = "drop-oldest", history: int = 1000
    ) -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}.")
        scheme = urlsplit(url).scheme
        if scheme != "memory":
            raise ValueError(f"No broadcast backend for {url!r}: this version offers 'memory://'.")
        self.url = url
        self.backend: Backend = MemoryBackend(self._deliver, history)
        self.maxsize = maxsize
        self.overflow = overflow
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = {}

    def _deliver(self, channel: str, entry: Entry) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions.get(channel, ()))
        for subscription in subscriptions:
            subscription.put(entry)

    def subscribe(
        self, channel: str, *, maxsize: int | None = None, overflow: str | None = None, last_id: str | None = None
    ) -> Subscription:
        """A new subscription to ``channel``; close it (or leave its ``with``) to
        unsubscribe. With ``last_id`` (an SSE client's ``Last-Event-ID``), what
        was published after it comes first, or a :class:`Gap` when the history
        no longer holds all of it."""
        policy = overflow or self.overflow
        if policy not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {policy!r}.")
        subscription = Subscription(self, channel, maxsize or self.maxsize, policy)

        def joined(missed: list[Entry], gap: bool) -> None:
            room = subscription.maxsize - 1
            if len(missed) > room:  # more than the queue holds: never a silently partial replay
                missed, gap = missed[len(missed) - room:] if room else [], True
            if gap and last_id is not None:
                subscription.put((id_key(last_id) or (0, 0), last_id, Gap(channel, last_id)))
            for entry in missed:
                subscription.put(entry)
            with self._lock:
                self._subscriptions.setdefault(channel, set()).add(subscription)

        self.backend.join(channel, last_id, joined)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Forget a closed subscription (it calls this itself)."""
        with self._lock:
            subscribers = self._subscriptions.get(subscription.channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscriptions[subscription.channel]

    def publish(self, channel: str, message: t.Any) -> str:
        """Publish from synchronous code (a sync view, spawned work, a periodic
        run); the message's id."""
        return self.backend.publish_now(channel, message)

    async def apublish(self, channel: str, message: t.Any) -> str:
        """Publish from async code; the message's id."""
        return await self.backend.publish(channel, message)

    def subscriber_count(self, channel: str | None = None) -> int:
        """How many subscriptions are open (to ``channel``, or to any)."""
        with self._lock:
            if channel is not None:
                return len(self._subscriptions.get(channel, ()))
            return sum(len(s) for s in self._subscriptions.values())
