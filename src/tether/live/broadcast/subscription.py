"""One subscriber's bounded queue, over one channel or several, iterated with
``for`` or ``async for``.

``subscribe(channel)`` makes one that yields bare messages.
``subscribe_many(...)`` makes one that yields a :class:`Delivery` per message
(its channel, id, message and event name) and that can :meth:`~Subscription.join`
and :meth:`~Subscription.leave` channels while it streams, from any thread.
Order holds per channel, and so does the last id (``last_ids``): each channel
resumes on its own.

When the queue holds ``maxsize`` live messages, the ``overflow`` policy
applies: ``"drop-oldest"`` (the oldest queued live message is dropped and
counted in ``dropped``) or ``"disconnect"`` (the subscription ends, and
iterating it raises :class:`SubscriberTooSlow`). So a slow consumer never
delays the others and never makes memory grow. A replay (what a resume
missed) is not live traffic: it is queued whole, bounded by the history.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
import typing as t

from ...serving.race import NOTHING_READY
from .history import Delivery, Gap, id_key
from .last_ids import LastIds

__all__ = ["OVERFLOW_POLICIES", "Deliveries", "Item", "Sink", "SubscriberTooSlow", "Subscription", "put_each"]

OVERFLOW_POLICIES = ("drop-oldest", "disconnect")

#: The queue of every subscription with nothing queued, shared: a subscription
#: makes a deque of its own for its first item, so this one is never appended
#: to (its ``maxlen=0`` would make such an append vanish).
NO_QUEUE: collections.deque[t.Any] = collections.deque(maxlen=0)

#: What a subscription queues: a message, or word that some were lost.
Item = Delivery | Gap

#: Takes what the subscription would yield, and its id, straight to the
#: subscriber; ``False`` if it can't now.
Sink = t.Callable[[t.Any, str], bool]


class SubscriberTooSlow(Exception):
    """The subscription's queue overflowed under the ``disconnect`` policy."""


class Registry(t.Protocol):
    """Where a subscription joins, leaves and unsubscribes (the broadcast)."""

    def add_channel(self, subscription: Subscription, channel: str, last_id: str | None, /) -> str | None: ...

    def remove_channel(self, subscription: Subscription, channel: str, /) -> None: ...

    def remove(self, subscription: Subscription, /) -> None: ...


class _Channel:
    """What a subscription keeps of one channel it follows."""

    __slots__ = ("held", "floor", "settled")

    def __init__(self) -> None:
        #: While the channel catches up (it was just joined): what was delivered meanwhile.
        self.held: list[Item] | None = []
        #: The newest id the catch-up covered: a delivery still on its way that
        #: is not newer came with the catch-up already.
        self.floor: tuple[int, int] | None = None
        #: Neither held nor floored: what is delivered is queued as it comes.
        self.settled = False

    def admit(self, item: Item) -> bool:
        """Whether ``item`` is queued now (not held, nor caught up already)."""
        if self.held is not None:
            self.held.append(item)
            return False
        if self.floor is not None and type(item) is Delivery:
            if _not_after(item, self.floor):
                return False
            self.floor = None
        self.settled = self.floor is None
        return True


class Subscription:
    """One subscriber: a bounded queue, iterated sync or async."""

    def __init__(self, broadcast: Registry, maxsize: int, overflow: str, channel: str | None = None) -> None:
        self.broadcast = broadcast
        #: The channel of a ``subscribe(channel)``; ``None`` for ``subscribe_many``.
        self.channel = channel
        #: Whether it yields Deliveries (``subscribe_many``) rather than bare messages.
        self.many = channel is None
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0
        self.closed = False
        self.too_slow = False
        #: The id of the last message taken from it (``None`` before the first).
        self.last_id: str | None = None
        self._last_ids = LastIds()
        self._following: dict[str, _Channel] = {}
        #: ``NO_QUEUE`` while nothing is queued: with direct sends most
        #: subscriptions never queue, and a deque is 0.75 KiB a connection.
        self._queue: collections.deque[Item] = NO_QUEUE
        #: Per channel, how many of its replayed items (``release``) are still
        #: queued: a channel's replay comes before its live items, so they are
        #: the first that many of its items in the queue.
        self._replayed: dict[str, int] = {}
        #: The queue's bound: ``maxsize`` live items, plus the replayed ones.
        self._limit = maxsize
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
        #: Whether the sink takes the Delivery, not the bare message.
        self._sink_takes_deliveries = self.many

    # -- channels ------------------------------------------------------------

    def join(self, channel: str, last_id: str | None = None) -> str | None:
        """Follow ``channel`` too, from now on, or after ``last_id``: what came
        after it first (a :class:`Gap` first where the history no longer holds
        all of it), with no gap and no duplicate. Joining a channel followed
        already, or with the subscription closed, does nothing. On Redis it
        takes a round trip or three, as ``subscribe`` does; none without
        ``last_id`` to a channel this process follows already.

        Returns the id the channel is followed from (what ``last_ids`` holds
        for it until a message of it is taken), ``None`` if it did nothing: so
        a join made on another thread knows its position, whatever the
        consumer takes meanwhile."""
        if not self.many:
            raise TypeError("A subscribe(channel) follows one channel: use subscribe_many() to join and leave.")
        return self.broadcast.add_channel(self, channel, last_id)

    def leave(self, channel: str) -> None:
        """Stop following ``channel``: once this returns, none of its messages
        comes, queued ones included. Leaving one not followed does nothing."""
        if not self.many:
            raise TypeError("A subscribe(channel) follows one channel: use subscribe_many() to join and leave.")
        self.broadcast.remove_channel(self, channel)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels followed, in the order they were joined."""
        with self._lock:
            return tuple(self._following)

    @property
    def last_ids(self) -> dict[str, str]:
        """Per channel followed, the id of the last message taken (or where it
        was joined): what to resume each from (a copy)."""
        with self._lock:
            if not self.many and self.last_id is not None and self.channel in self._last_ids.ids:
                return {self.channel: self.last_id}  # kept by last_id alone, for speed
            return dict(self._last_ids.ids)

    def last_event_id(self) -> str:
        """``last_ids`` as one SSE id (``tether.live.broadcast.last_ids``)."""
        with self._lock:
            return self._last_ids.encoded()

    def last_event_id_after(self, delivery: Delivery) -> str:
        """The SSE id once ``delivery`` is taken; for a sink, which runs under
        the subscription's lock already."""
        return self._last_ids.encoded(delivery.channel, delivery.id)

    def hold(self, channel: str, position: str) -> bool:
        """Follow ``channel`` from ``position``, holding what is delivered until
        :meth:`release`; ``False`` if followed already or closed. (The
        broadcast calls this, under its lock, as it registers the join.)"""
        with self._lock:
            if self.closed or channel in self._following:
                return False
            self._following[channel] = _Channel()
            self._last_ids.join(channel, position)
            return True

    def drop(self, channel: str) -> bool:
        """Stop following ``channel`` and drop its queued messages; ``False``
        if it was not followed. (The broadcast calls this, under its lock.)"""
        with self._lock:
            if self._following.pop(channel, None) is None:
                return False
            self._last_ids.leave(channel)
            if any(item.channel == channel for item in self._queue):
                self._queue = collections.deque(item for item in self._queue if item.channel != channel)
            self._limit -= self._replayed.pop(channel, 0)
            return True

    def drop_all(self) -> list[str]:
        """Stop following every channel; the ones it followed (``remove``)."""
        with self._lock:
            channels = list(self._following)
            self._following.clear()
            return channels

    def release(self, channel: str, first: list[Item], floor: tuple[int, int] | None) -> None:
        """Queue ``first`` (what ``channel`` missed) whole, then what was held
        that is newer than ``floor`` as live traffic, in one go; its
        deliveries are queued as they come from now on.

        The replay bypasses ``maxsize``, which protects the server from a
        consumer slower than the live traffic: the replay is bounded by the
        history already, and is in memory already (the backend read it whole).
        Paging it from the history as the consumer drains it instead would
        hold the channel's live deliveries all that time, and on Redis make
        the consumer's path wait on round trips. What was held, like all live
        traffic, obeys ``maxsize`` and the overflow policy; the replayed items
        do not count against it."""
        with self._lock:
            following = self._following.get(channel)
            if following is None or following.held is None:  # left meanwhile
                return
            held, following.held = following.held, None
            following.floor = floor
            following.settled = floor is None
            if first and not self.closed:
                if self._queue is NO_QUEUE:
                    self._queue = collections.deque()
                self._queue.extend(first)
                self._replayed[channel] = self._replayed.get(channel, 0) + len(first)
                self._limit += len(first)
                self._wake_locked()
            ended = False
            for item in held:
                if floor is None or type(item) is not Delivery or not _not_after(item, floor):
                    ended = self._put_locked(item) or ended
        if ended:
            self.broadcast.remove(self)

    # -- delivery ------------------------------------------------------------

    def push_to(self, sink: Sink | None) -> None:
        """While nothing is queued, hand what is put on this thread to ``sink``
        (what iterating would yield, and its id) rather than queue it and wake
        a waiter; what ``sink`` refuses is queued as usual. A consumer waiting
        on this thread's loop sets it for the time of its wait
        (``tether.serving.direct``); ``None`` unsets it."""
        self._set_sink(sink, self.many)

    def _set_sink(self, sink: Sink | None, takes_deliveries: bool) -> None:
        with self._lock:
            self._sink = sink
            self._sink_thread = threading.get_ident()
            self._sink_takes_deliveries = takes_deliveries

    def put(self, item: Item) -> None:
        """Queue a message, or hand it to the sink (called by the broadcast,
        on the ``home`` loop once there is one, else on any thread)."""
        with self._lock:
            try:
                following = self._following[item.channel]
            except KeyError:  # left (a delivery on its way when it did)
                return
            if not following.settled and not following.admit(item):
                return
            sink = self._sink
            if (
                sink is not None
                and not self._queue
                and not self.closed
                and self._sink_thread == threading.get_ident()
                and type(item) is Delivery
                and sink(item if self._sink_takes_deliveries else item.message, item.id)
            ):
                self.last_id = item.id
                if self.many:
                    self._last_ids.ids[item.channel] = item.id
                return
            ended = self._put_locked(item)
        if ended:
            self.broadcast.remove(self)

    def _put_locked(self, item: Item) -> bool:
        """Queue ``item`` under the overflow policy; ``True`` when that ended
        the subscription (``disconnect``)."""
        if self.closed:
            return False
        if len(self._queue) >= self._limit:
            if self.overflow == "disconnect":
                self.too_slow = True
                self._close_locked()
                return True
            self._drop_oldest_live()
        if self._queue is NO_QUEUE:
            self._queue = collections.deque()
        self._queue.append(item)
        self._wake_locked()
        return False

    def _drop_oldest_live(self) -> None:
        """Drop the oldest queued live item (``drop-oldest``): a replayed one
        is not live traffic, so it stays, and the replay arrives whole."""
        if not self._replayed:
            self._queue.popleft()
            self.dropped += 1
            return
        passed: dict[str, int] = {}
        for index, item in enumerate(self._queue):
            replayed = passed.get(item.channel, 0)
            if replayed >= self._replayed.get(item.channel, 0):
                del self._queue[index]
                self.dropped += 1
                return
            passed[item.channel] = replayed + 1

    def _replayed_taken(self, channel: str) -> None:
        """An item of ``channel`` left the queue's front: one of its replay, if any is left."""
        left = self._replayed.get(channel)
        if left is not None:
            self._limit -= 1
            if left > 1:
                self._replayed[channel] = left - 1
            else:
                del self._replayed[channel]

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
            self._replayed.clear()
            self._limit = self.maxsize
        self._wake_locked()

    def queued(self) -> list[t.Any]:
        """What is waiting to be taken, oldest first, as iterating yields it (a copy)."""
        with self._lock:
            return [self._shown(item) for item in self._queue]

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

    # -- taking --------------------------------------------------------------

    def _shown(self, item: Item) -> t.Any:
        """What iterating yields for ``item``: a Delivery (or Gap) from
        ``subscribe_many``, the bare message (or Gap) from ``subscribe``."""
        if self.many or type(item) is not Delivery:
            return item
        return item.message

    def _take(self) -> tuple[bool, Item | None]:
        if self._queue:
            item = self._queue.popleft()
            if self._replayed:
                self._replayed_taken(item.channel)
            if not self._queue:
                self._queue = NO_QUEUE
            if isinstance(item, Delivery):
                self.last_id = item.id
                if self.many:
                    self._last_ids.ids[item.channel] = item.id
            else:
                self.last_id = item.last_id
            return True, item
        if self.too_slow:
            name = repr(self.channel) if self.channel is not None else "several channels"
            raise SubscriberTooSlow(f"A subscriber of {name} fell {self.maxsize} messages behind.")
        if self.closed:
            raise StopIteration
        return False, None

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> t.Any:
        with self._lock:
            while True:
                ready, item = self._take()
                if ready:
                    return self._shown(t.cast(Item, item))
                if self._condition is None:
                    self._condition = threading.Condition(self._lock)
                self._condition.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> t.Any:
        return self._shown(await self.next_item())

    async def next_item(self) -> Item:
        """The next queued item as it is (a Delivery or a Gap), waiting for one."""
        while True:
            with self._lock:
                try:
                    ready, item = self._take()
                except StopIteration:
                    raise StopAsyncIteration from None
                if ready:
                    return t.cast(Item, item)
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
        item = self.poll_item()
        return item if item is NOTHING_READY else self._shown(item)

    def poll_item(self) -> t.Any:
        """:meth:`poll`, giving the queued item as it is (a Delivery or a Gap)."""
        with self._lock:
            try:
                ready, item = self._take()
            except StopIteration:
                raise StopAsyncIteration from None
        return item if ready else NOTHING_READY

    def deliveries(self) -> Deliveries:
        """This subscription's items as they are queued, a :class:`Delivery`
        per message whatever it yields: what an EventStream or a WebSocket
        relay sends, with each message's id and event name."""
        return Deliveries(self)

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
        return f"<Subscription {list(self._following)!r} queued={len(self._queue)} dropped={self.dropped}>"


class Deliveries:
    """A subscription iterated item by item as queued (``deliveries()``), with
    the ``poll``/``ready``/``push_to`` of ``tether.serving.race``; its sink
    takes Deliveries. ``wire_form`` is what a WebSocket relay sends of an item.
    (Its methods are the subscription's own: no call in between.)"""

    __slots__ = ("subscription", "many", "wire_form", "poll", "ready", "push_to", "close")

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.many = subscription.many
        #: One function per kind of subscription, so that an encoding made
        #: for one subscriber may be reused for the next (``encoded_once``).
        self.wire_form: t.Callable[[Item], t.Any] = channels_form if self.many else message_form
        self.poll: t.Callable[[], t.Any] = subscription.poll_item
        self.ready: t.Callable[[], asyncio.Future[None]] = subscription.ready
        self.push_to: t.Callable[[Sink | None], None] = functools.partial(subscription._set_sink, takes_deliveries=True)
        self.close: t.Callable[[], None] = subscription.close

    def __aiter__(self) -> Deliveries:
        return self

    async def __anext__(self) -> Item:
        return await self.subscription.next_item()


def message_form(item: Item) -> t.Any:
    """A single-channel subscription's item as relayed: the message (or Gap)."""
    return item.message if type(item) is Delivery else item


def channels_form(item: Item) -> dict[str, t.Any]:
    """A multi-channel subscription's item as relayed: its channel, id, event and data."""
    if type(item) is Delivery:
        return {"channel": item.channel, "id": item.id, "event": item.event, "data": item.message}
    gap = t.cast(Gap, item)
    return {"channel": gap.channel, "event": "gap", "last_id": gap.last_id}


def _not_after(delivery: Delivery, floor: tuple[int, int]) -> bool:
    key = id_key(delivery.id)
    return key is not None and key <= floor


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def put_each(batch: list[tuple[list[Subscription], Item]]) -> None:
    """Put each item to its subscriptions, in the batch's order: the broadcast
    calls it on their home loop, once per batch the backend handed over."""
    for subscriptions, item in batch:
        for subscription in subscriptions:
            subscription.put(item)
