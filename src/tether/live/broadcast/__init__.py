"""Live fan-out: ``Broadcast.publish(channel, message)`` reaches every current
``subscribe(channel)``.

Each subscription has a bounded queue of its own (``subscription``), iterated
with ``async for`` or ``for``; it ends, unsubscribed, when closed (leaving its
``with`` / ``async with`` block, or its consumer stopping, as when an
EventStream's client goes away).

A backend carries published messages to ``deliver(channel, message)``, which
fans each out to that channel's subscriptions in this process. It offers
``publish(channel, message)`` (async) and ``publish_now(channel, message)``
(sync, from any thread). ``memory://`` (``memory``) delivers in-process, at once.
"""

from __future__ import annotations

import threading
import typing as t
from urllib.parse import urlsplit

from .memory import MemoryBackend
from .subscription import OVERFLOW_POLICIES, SubscriberTooSlow, Subscription

__all__ = ["Backend", "Broadcast", "MemoryBackend", "SubscriberTooSlow", "Subscription"]


class Backend(t.Protocol):
    """Carries published messages to the broadcast's ``deliver``."""

    async def publish(self, channel: str, message: t.Any) -> None: ...

    def publish_now(self, channel: str, message: t.Any) -> None: ...


class Broadcast:
    """Publish to channels and subscribe to them; see the module docstring."""

    def __init__(self, url: str = "memory://", *, maxsize: int = 100, overflow: str = "drop-oldest") -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}.")
        scheme = urlsplit(url).scheme
        if scheme != "memory":
            raise ValueError(f"No broadcast backend for {url!r}: this version offers 'memory://'.")
        self.url = url
        self.backend: Backend = MemoryBackend(self._deliver)
        self.maxsize = maxsize
        self.overflow = overflow
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = {}

    def _deliver(self, channel: str, message: t.Any) -> None:
        with self._lock:
            subscriptions = list(self._subscriptions.get(channel, ()))
        for subscription in subscriptions:
            subscription.put(message)

    def subscribe(self, channel: str, *, maxsize: int | None = None, overflow: str | None = None) -> Subscription:
        """A new subscription to ``channel``; close it (or leave its ``with``) to unsubscribe."""
        policy = overflow or self.overflow
        if policy not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {policy!r}.")
        subscription = Subscription(self, channel, maxsize or self.maxsize, policy)
        with self._lock:
            self._subscriptions.setdefault(channel, set()).add(subscription)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Forget a closed subscription (it calls this itself)."""
        with self._lock:
            subscribers = self._subscriptions.get(subscription.channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscriptions[subscription.channel]

    def publish(self, channel: str, message: t.Any) -> None:
        """Publish from synchronous code (a sync view, spawned work, a periodic run)."""
        self.backend.publish_now(channel, message)

    async def apublish(self, channel: str, message: t.Any) -> None:
        """Publish from async code."""
        await self.backend.publish(channel, message)

    def subscriber_count(self, channel: str | None = None) -> int:
        """How many subscriptions are open (to ``channel``, or to any)."""
        with self._lock:
            if channel is not None:
                return len(self._subscriptions.get(channel, ()))
            return sum(len(s) for s in self._subscriptions.values())
