"""One subscriber's bounded queue, iterated with ``for`` or ``async for``.

When the queue is full, the ``overflow`` policy applies: ``"drop-oldest"`` (the
oldest queued message is dropped and counted in ``dropped``) or
``"disconnect"`` (the subscription ends, and iterating it raises
:class:`SubscriberTooSlow`). So a slow consumer never delays the others and
never makes memory grow.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import typing as t

from ...serving.race import NOTHING_READY
from .history import Entry

__all__ = ["OVERFLOW_POLICIES", "Sink", "SubscriberTooSlow", "Subscription", "put_each"]

OVERFLOW_POLICIES = ("drop-oldest", "disconnect")

#: Takes a message and its id straight to the subscriber; ``False`` if it can't now.
Sink = t.Callable[[t.Any, str], bool]


class SubscriberTooSlow(Exception):
    """The subscription's queue overflowed under the ``disconnect`` policy."""


class Registry(t.Protocol):
    """Where a subscription unsubscribes itself (the broadcast)."""

    def remove(self, subscription: Subscription, /) -> None: ...


class Subscription:
    """One subscriber to one channel: a bounded queue, iterated sync or async."""

    def __init__(self, broadcast: Registry, channel: str, maxsize: int, overflow: str) -> None:
        self.broadcast = broadcast
        self.channel = channel
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0
        self.closed = False
        self.too_slow = False
        #: The id of the last message taken from it (``None`` before the first).
        self.last_id: str | None = None
        self._queue: collections.deque[Entry] = collections.deque()
        #: While the subscription catches up: what was delivered meanwhile.
        self._held: list[Entry] | None = None
        #: A plain lock (C-level enter and exit: a fan-out takes it once per
        #: subscriber); the condition over it is made for the first sync wait.
        self._lock = threading.Lock()
        self._condition: threading.Condition | None = None
        #: Async iterations waiting for a message: their loop, future and thread.
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], int]] = []
        #: The loop of the async consumer, once one waits: every message is put
        #: there (``put_each``), in order, where it may go straight to the sink.
        #: So a subscription is consumed on one loop, or with ``for``, not both.
        self.home: asyncio.AbstractEventLoop | None = None
        self._home_thread = 0
        #: Where messages put on ``_sink_thread`` go while nothing is queued (``push_to``).
        self._sink: Sink | None = None
        self._sink_thread = 0

    def hold(self) -> None:
        """Hold what is delivered until :meth:`release` (the broadcast catches up)."""
        with self._lock:
            self._held = []

    def release(self, first: list[Entry], floor: tuple[int, int] | None) -> None:
        """Queue ``first`` (what was missed), then what was held that is newer
        than ``floor``, in one go; deliveries are queued as they come from now on."""
        with self._lock:
            held, self._held = self._held or [], None
            ended = False
            for entry in [*first, *(entry for entry in held if floor is None or entry[0] > floor)]:
                ended = self._put_locked(entry) or ended
        if ended:
            self.broadcast.remove(self)

    def push_to(self, sink: Sink | None) -> None:
        """While nothing is queued, hand what is put on this thread to ``sink``
        rather than queue it and wake a waiter; what ``sink`` refuses is queued
        as usual. A consumer waiting on this thread's loop sets it for the time
        of its wait (``tether.serving.direct``); ``None`` unsets it."""
        with self._lock:
            self._sink = sink
            self._sink_thread = threading.get_ident()

    def put(self, entry: Entry) -> None:
        """Queue a message, or hand it to the sink (called by the broadcast,
        on the ``home`` loop once there is one, else on any thread)."""
        with self._lock:
            if self._held is not None:
                self._held.append(entry)
                return
            sink = self._sink
            if (
                sink is not None
                and not self._queue
                and not self.closed
                and self._sink_thread == threading.get_ident()
                and sink(entry[2], entry[1])
            ):
                self.last_id = entry[1]
                return
            ended = self._put_locked(entry)
        if ended:
            self.broadcast.remove(self)

    def _put_locked(self, entry: Entry) -> bool:
        """Queue ``entry`` under the overflow policy; ``True`` when that ended
        the subscription (``disconnect``)."""
        if self.closed:
            return False
        if len(self._queue) >= self.maxsize:
            if self.overflow == "disconnect":
                self.too_slow = True
                self._close_locked()
                return True
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(entry)
        self._wake_locked()
        return False

    def _wake_locked(self) -> None:
        if self._condition is not None:
            self._condition.notify_all()
        if not self._waiters:
            return
        waiters, self._waiters = self._waiters, []
        here = threading.get_ident()
        for loop, waiter, thread in waiters:
            if thread == here:  # put on the waiter's own loop: no wake-up through its self-pipe
                _wake(waiter)
            else:
                loop.call_soon_threadsafe(_wake, waiter)

    def _close_locked(self) -> None:
        self.closed = True
        self._sink = None
        if self.too_slow:
            self._queue.clear()
        self._wake_locked()

    def queued(self) -> list[t.Any]:
        """The messages waiting to be taken, oldest first (a copy)."""
        with self._lock:
            return [message for _, _, message in self._queue]

    def close(self) -> None:
        """Unsubscribe; iteration ends once the messages already put are taken.
        From outside the home loop, the close is put there too, behind the
        messages on their way to it."""
        home = self.home
        if home is not None and self._home_thread != threading.get_ident():
            try:
                home.call_soon_threadsafe(self._close)
                return
            except RuntimeError:  # the loop is closed
                pass
        self._close()

    def _close(self) -> None:
        with self._lock:
            if self.closed and not self.too_slow:
                return
            self._close_locked()
        self.broadcast.remove(self)

    def _take(self) -> tuple[bool, t.Any]:
        if self._queue:
            _, self.last_id, message = self._queue.popleft()
            return True, message
        if self.too_slow:
            raise SubscriberTooSlow(f"A subscriber of {self.channel!r} fell {self.maxsize} messages behind.")
        if self.closed:
            raise StopIteration
        return False, None

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> t.Any:
        with self._lock:
            while True:
                ready, message = self._take()
                if ready:
                    return message
                if self._condition is None:
                    self._condition = threading.Condition(self._lock)
                self._condition.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> t.Any:
        while True:
            with self._lock:
                try:
                    ready, message = self._take()
                except StopIteration:
                    raise StopAsyncIteration from None
                if ready:
                    return message
            await self.ready()

    def ready(self) -> asyncio.Future[None]:
        """A future of the running loop, done once a message is queued or the
        subscription ends: with :meth:`poll`, a wait without a task per message."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self.home = loop
        self._home_thread = threading.get_ident()
        with self._lock:
            if self._queue or self.closed:
                waiter.set_result(None)
            else:
                if self._waiters:  # waits that ended otherwise (a timeout, the client leaving)
                    self._waiters = [entry for entry in self._waiters if not entry[1].done()]
                self._waiters.append((loop, waiter, threading.get_ident()))
        return waiter

    def poll(self) -> t.Any:
        """The next message if one is queued, else ``NOTHING_READY``: a relay
        takes what is ready without waiting (``tether.serving.race``)."""
        with self._lock:
            try:
                ready, message = self._take()
            except StopIteration:
                raise StopAsyncIteration from None
        return message if ready else NOTHING_READY

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


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def put_each(subscriptions: list[Subscription], entry: Entry) -> None:
    """Put ``entry`` to each of ``subscriptions``: the broadcast calls it on
    their home loop, once per message for all of that loop's subscribers."""
    for subscription in subscriptions:
        subscription.put(entry)
