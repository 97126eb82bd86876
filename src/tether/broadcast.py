"""Live fan-out: ``Broadcast.publish(channel, message)`` reaches every current
``subscribe(channel)``.

Each subscription has a bounded queue of its own, so a slow consumer never
delays the others and never makes memory grow: when its queue is full, the
``overflow`` policy applies, either ``"drop-oldest"`` (the oldest queued message
is dropped and counted in ``subscription.dropped``) or ``"disconnect"`` (the
subscription ends, and iterating it raises :class:`SubscriberTooSlow`).
Subscriptions are iterated with ``async for`` or ``for`` and end, unsubscribed,
when closed (leaving their ``with`` / ``async with`` block, or the consumer
stopping, as when an EventStream's client goes away).

A backend carries messages between processes. It offers ``start(deliver)``,
``stop()``, ``subscribe(channel)``, ``unsubscribe(channel)`` and
``publish(channel, message)`` (async), and calls ``deliver(channel, message)``
for every message published to a channel it subscribed to, from any process.
``memory://`` delivers in-process, at once.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import typing as t
from urllib.parse import urlsplit

__all__ = ["Broadcast", "MemoryBackend", "SubscriberTooSlow", "Subscription"]

Deliver = t.Callable[[str, t.Any], None]
OVERFLOW_POLICIES = ("drop-oldest", "disconnect")


class SubscriberTooSlow(Exception):
    """The subscription's queue overflowed under the ``disconnect`` policy."""


class MemoryBackend:
    """Delivers in this process only: one worker's fan-out."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def subscribe(self, channel: str) -> None:
        pass

    async def unsubscribe(self, channel: str) -> None:
        pass

    async def publish(self, channel: str, message: t.Any) -> None:
        if self._deliver is not None:
            self._deliver(channel, message)

    def publish_now(self, channel: str, message: t.Any) -> None:
        """Publish from synchronous code, from any thread."""
        if self._deliver is not None:
            self._deliver(channel, message)


class Subscription:
    """One subscriber to one channel: a bounded queue, iterated sync or async."""

    def __init__(self, broadcast: Broadcast, channel: str, maxsize: int, overflow: str) -> None:
        self.broadcast = broadcast
        self.channel = channel
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0
        self.closed = False
        self.too_slow = False
        self._queue: collections.deque[t.Any] = collections.deque()
        self._condition = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def put(self, message: t.Any) -> None:
        """Queue ``message`` (called by the broadcast, from any thread)."""
        with self._condition:
            if self.closed:
                return
            if len(self._queue) >= self.maxsize and self.overflow == "disconnect":
                self.too_slow = True
                self._close_locked()
            else:
                if len(self._queue) >= self.maxsize:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(message)
                self._wake_locked()
                return
        self.broadcast._remove(self)

    def _wake_locked(self) -> None:
        self._condition.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def _close_locked(self) -> None:
        self.closed = True
        if self.too_slow:
            self._queue.clear()
        self._wake_locked()

    def close(self) -> None:
        """Unsubscribe; iteration ends once the messages already queued are taken."""
        with self._condition:
            if self.closed and not self.too_slow:
                return
            self._close_locked()
        self.broadcast._remove(self)

    def _take(self) -> tuple[bool, t.Any]:
        if self._queue:
            return True, self._queue.popleft()
        if self.too_slow:
            raise SubscriberTooSlow(f"A subscriber of {self.channel!r} fell {self.maxsize} messages behind.")
        if self.closed:
            raise StopIteration
        return False, None

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> t.Any:
        with self._condition:
            while True:
                ready, message = self._take()
                if ready:
                    return message
                self._condition.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> t.Any:
        loop = asyncio.get_running_loop()
        while True:
            with self._condition:
                try:
                    ready, message = self._take()
                except StopIteration:
                    raise StopAsyncIteration from None
                if ready:
                    return message
                event = asyncio.Event()
                self._waiters.append((loop, event))
            await event.wait()

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Subscription {self.channel!r} queued={len(self._queue)} dropped={self.dropped}>"


class Broadcast:
    """Publish to channels and subscribe to them; see the module docstring."""

    def __init__(self, url: str = "memory://", *, maxsize: int = 100, overflow: str = "drop-oldest") -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}.")
        scheme = urlsplit(url).scheme
        if scheme != "memory":
            raise ValueError(f"No broadcast backend for {url!r}: this version offers 'memory://'.")
        self.url = url
        self.backend = MemoryBackend()
        self.maxsize = maxsize
        self.overflow = overflow
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self.backend._deliver = self._deliver

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

    def _remove(self, subscription: Subscription) -> None:
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
