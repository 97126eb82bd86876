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

``subscribe_many(channels)`` follows several channels, and can ``join`` and
``leave`` channels while it streams (rooms): it yields a :class:`Delivery`
(channel, id, message, event name) per message, keeps the last id of each
channel, and its SSE id holds them all (``last_ids``). ``publish(channel,
message, event=...)`` names a message's kind (an SSE ``event:``).

A backend (``backends.Backend``, chosen by the URL's scheme: ``backends``)
gives ids, keeps the history and carries published messages to
``deliver(deliveries)``, as many at once as it has, which fans each out to its
channel's subscriptions in this process (to one consumed on an event loop, on
that loop, where a waiting stream sends it at once: ``tether.serving.direct``).
``memory://`` (``memory``) delivers in-process, at once; ``redis://`` reaches
every worker.

On a shared server (``redis://``) a broadcast lives in a *namespace*: its
channels, histories and cluster locks are keys of that namespace only, so two
apps that share a Redis database and both have a channel ``news`` (or a
periodic ``app.cleanup``) never hear each other. An app's namespace is its
``BROADCAST_NAMESPACE``, by default its import name; a plain script names the
app's: ``Broadcast(url, namespace="shop")``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import typing as t

from .backends import (
    ENTRY_POINTS,
    ID_FORMAT,
    REDIS_SCHEMES,
    Backend,
    BackendCheck,
    BackendFactory,
    BackendOptions,
    Turns,
    check_url,
    make_backend,
    redacted,
    register_backend,
    valid_id,
)
from .errors import BroadcastUnavailable, TurnsUnavailable
from .history import Delivery, Gap, id_key
from .last_ids import decode_last_ids, encode_last_ids
from .memory import MemoryBackend
from .subscription import OVERFLOW_POLICIES, Item, SubscriberTooSlow, Subscription, put_each

#: What a subscription resumes from when the client's id is unknown: not an
#: id, so the backends give the whole history and say some may be missing.
UNKNOWN_ID = ""

__all__ = [
    "ENTRY_POINTS", "ID_FORMAT", "REDIS_SCHEMES", "Backend", "BackendCheck", "BackendFactory", "BackendOptions", "Broadcast",
    "BroadcastUnavailable", "Delivery", "Gap", "MemoryBackend", "SubscriberTooSlow", "Subscription", "Turns",
    "TurnsUnavailable", "check_url", "decode_last_ids", "encode_last_ids", "redacted", "register_backend",
    "valid_id",
]


class Broadcast:
    """Publish to channels and subscribe to them; see the module docstring."""

    def __init__(
        self,
        url: str = "memory://",
        *,
        maxsize: int = 100,
        overflow: str = "drop-oldest",
        history: int = 1000,
        dumps: t.Callable[[t.Any], str] = json.dumps,
        loads: t.Callable[[str | bytes], t.Any] = json.loads,
        namespace: str | None = None,
    ) -> None:
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {overflow!r}.")
        if namespace is not None and (not isinstance(namespace, str) or not namespace or ":" in namespace):
            raise ValueError(f"A broadcast namespace is a non-empty name without ':', not {namespace!r}.")
        self.backend: Backend = make_backend(url, BackendOptions(namespace, self._deliver, history, dumps, loads))
        self.url = url
        #: Where this broadcast's channels and cluster locks live on a shared server.
        self.namespace = namespace
        self.maxsize = maxsize
        self.overflow = overflow
        self._lock = threading.Lock()
        #: Each channel's subscriptions in the order they subscribed (a dict
        #: used as an ordered set): a message is fanned out in that order,
        #: which keeps the writes to one client's connections together rather
        #: than scattered in hash order.
        self._subscriptions: dict[str, dict[Subscription, None]] = {}

    def _deliver(self, items: t.Sequence[Item]) -> None:
        """Fan ``items`` out, in order. A subscription consumed on an event loop
        gets them on that loop, one hand-off per loop for the whole batch (a
        backend hands over all it read at once: from any thread, the loop's own
        included, so that the backend's order is the loop's order): there each
        goes straight to a waiting consumer's sink (``tether.serving.direct``).
        Others (sync consumers, or none yet) get them here and now."""
        with self._lock:
            found = [(item, list(self._subscriptions.get(item.channel, ()))) for item in items]
        homes: dict[asyncio.AbstractEventLoop, list[tuple[list[Subscription], Item]]] = {}
        for item, subscriptions in found:
            groups: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
            for subscription in subscriptions:
                home = subscription.home
                if home is None:
                    subscription.put(item)
                else:
                    groups.setdefault(home, []).append(subscription)
            for loop, group in groups.items():
                homes.setdefault(loop, []).append((group, item))
        for loop, batch in homes.items():
            try:
                loop.call_soon_threadsafe(put_each, batch)
            except RuntimeError:  # the loop is closed: its consumers are gone
                pass

    def subscribe(
        self, channel: str, *, maxsize: int | None = None, overflow: str | None = None, last_id: str | None = None
    ) -> Subscription:
        """A new subscription to ``channel``, yielding its messages; close it
        (or leave its ``with``) to unsubscribe. With ``last_id`` (an SSE
        client's ``Last-Event-ID``), what was published after it comes first,
        or a :class:`~tether.Gap` when the history no longer holds all of it."""
        _check_channel(channel)
        subscription = Subscription(self, maxsize or self.maxsize, self._policy(overflow), channel)
        self.add_channel(subscription, channel, last_id)
        return subscription

    def subscribe_many(
        self,
        channels: t.Iterable[str] = (),
        *,
        last_ids: t.Mapping[str, str] | str | None = None,
        maxsize: int | None = None,
        overflow: str | None = None,
    ) -> Subscription:
        """A new subscription to ``channels``, yielding a :class:`Delivery` per
        message (or a :class:`Gap`), which can ``join`` and ``leave`` channels
        while it streams. ``last_ids`` resumes each channel it names after its
        id: a mapping, or the SSE id such a subscription sends (a browser's
        ``Last-Event-ID``), where an id that cannot be read means a gap and the
        whole history on every channel."""
        if isinstance(channels, str):
            raise TypeError(f"subscribe_many() takes channels, not one name: subscribe_many([{channels!r}]).")
        channels = list(channels)
        for channel in channels:
            _check_channel(channel)
        resume = decode_last_ids(last_ids) if isinstance(last_ids, str) else (last_ids or {})
        subscription = Subscription(self, maxsize or self.maxsize, self._policy(overflow))
        for channel in channels:
            self.add_channel(subscription, channel, resume.get(channel) if resume is not None else UNKNOWN_ID)
        return subscription

    def _policy(self, overflow: str | None) -> str:
        policy = overflow or self.overflow
        if policy not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, not {policy!r}.")
        return policy

    def add_channel(self, subscription: Subscription, channel: str, last_id: str | None) -> str | None:
        """Make ``subscription`` follow ``channel`` (its ``join`` calls this);
        the id it follows from, ``None`` if it did not join. From ``start``
        on, nothing is missed and nothing comes twice: what is delivered while
        catching up is held, then kept only if newer. Joining from now a
        channel this process follows already takes no round trip to the
        backend's server (``_join_where_followed``): so a subscribe made on an
        event loop, as most are, holds it up only for the first subscriber
        of a channel here, or one resuming from a ``last_id``."""
        _check_channel(channel)
        if last_id is None:
            joined = self._join_where_followed(subscription, channel)
            if joined is not False:
                return joined
        try:
            tail = self.backend.tail(channel)
        except BroadcastUnavailable:  # joined all the same: the listener catches up once it is back
            tail = None
        start = _resume_from(tail, last_id)
        position = start or "0-0"
        with self._lock:
            if not subscription.hold(channel, position):
                return None
            subscribers = self._subscriptions.setdefault(channel, {})
            if not subscribers:
                self.backend.follow(channel, tail)
            subscribers[subscription] = None
        missed, gap = self.backend.catch_up(channel, start) if start is not None else ([], False)
        floor = id_key(missed[-1].id) if missed else (id_key(start) if start is not None else None)
        first: list[Item] = list(missed)
        if gap and last_id is not None:
            first.insert(0, Gap(channel, last_id))
        subscription.release(channel, first, floor)
        return position

    def _join_where_followed(self, subscription: Subscription, channel: str) -> str | None | t.Literal[False]:
        """Join ``channel`` from now, with no round trip, when this process
        follows it already and the backend knows where its reading stands
        (``position``): from there on, the backend delivers every message
        to the subscriptions registered here, this one included. ``False``
        where it cannot (the join then asks the backend)."""
        position_of = getattr(self.backend, "position", None)
        if position_of is None:
            return False
        with self._lock:
            subscribers = self._subscriptions.get(channel)
            position: str | None = position_of(channel) if subscribers else None
            if not subscribers or position is None:
                return False
            if not subscription.hold(channel, position):
                return None
            subscribers[subscription] = None
        subscription.release(channel, [], id_key(position))
        return position

    def remove_channel(self, subscription: Subscription, channel: str) -> None:
        """Stop ``subscription`` following ``channel`` (its ``leave`` calls this)."""
        with self._lock:
            if subscription.drop(channel):
                self._forget(subscription, channel)

    def remove(self, subscription: Subscription) -> None:
        """Forget a closed subscription (it calls this itself)."""
        with self._lock:
            for channel in subscription.drop_all():
                self._forget(subscription, channel)

    def _forget(self, subscription: Subscription, channel: str) -> None:
        """Under the lock: ``subscription`` no longer follows ``channel``."""
        subscribers = self._subscriptions.get(channel)
        if subscribers is None or subscription not in subscribers:
            return
        del subscribers[subscription]
        if not subscribers:
            del self._subscriptions[channel]
            self.backend.unfollow(channel)

    def publish(self, channel: str, message: t.Any, event: str | None = None) -> str:
        """Publish from synchronous code (a sync view, spawned work, a periodic
        run); the message's id. ``event`` names its kind (an SSE ``event:``)."""
        _check_channel(channel)
        _check_event(event)
        return self.backend.publish_now(channel, message, event)

    async def apublish(self, channel: str, message: t.Any, event: str | None = None) -> str:
        """Publish from async code; the message's id."""
        _check_channel(channel)
        _check_event(event)
        return await self.backend.publish(channel, message, event)

    def last_id(self, channel: str) -> str | None:
        """The id of ``channel``'s newest message (``None``: nothing kept).
        Read it before the state that the channel's messages change, then
        join from it (``subscribe(channel, last_id=...)``, the client's
        ``join(channel, lastId)``): nothing published after that state was
        read is missed. Raises :class:`~tether.BroadcastUnavailable` when Redis
        cannot be reached. From sync code."""
        _check_channel(channel)
        return self.backend.tail(channel)

    async def alast_id(self, channel: str) -> str | None:
        """:meth:`last_id` from async code: the backend's ``atail`` where it
        has one (``memory://``, Redis), else its ``tail`` in a thread."""
        _check_channel(channel)
        atail = getattr(self.backend, "atail", None)
        if atail is None:
            return await asyncio.to_thread(self.backend.tail, channel)
        return t.cast("str | None", await atail(channel))

    def expire(self, channel: str, seconds: float) -> None:
        """Forget ``channel``'s history after ``seconds``: a channel that has
        served its purpose (a finished task's progress) stops holding memory."""
        self.backend.expire(channel, seconds)

    @property
    def healthy(self) -> bool:
        """Whether messages from other processes are reaching this one (the
        Redis listener is connected); always true for ``memory://``."""
        return self.backend.healthy

    def subscriber_count(self, channel: str | None = None) -> int:
        """How many subscriptions are open (to ``channel``, or to any)."""
        with self._lock:
            if channel is not None:
                return len(self._subscriptions.get(channel, ()))
            return sum(len(s) for s in self._subscriptions.values())


def _resume_from(tail: str | None, last_id: str | None) -> str | None:
    """Where a subscription to a channel whose newest id is ``tail`` starts:
    after ``last_id``, else after the newest message. An id this channel never
    gave (malformed, or newer than its newest message: forged, or from a
    history since forgotten) is unknown: the whole history, after a gap."""
    if last_id is None:
        return tail
    key = id_key(last_id)
    if key == (0, 0):  # the whole history, asked for
        return last_id
    newest = id_key(tail) if tail is not None else None
    if key is None or newest is None or key > newest:
        return UNKNOWN_ID
    return last_id


def _check_event(event: object) -> None:
    """An event name is sent as an SSE ``event:`` line: a str without line breaks or NUL."""
    if event is not None and (not isinstance(event, str) or any(c in event for c in "\r\n\x00")):
        raise ValueError(f"An event name is a str without line breaks or NUL, not {event!r}.")


def _check_channel(channel: object) -> None:
    """Channels are names: on Redis, a non-str one would come back as a str and
    reach nobody. Any str is a name, on every backend (JSON input included)."""
    if not isinstance(channel, str):
        raise TypeError(f"A broadcast channel is a str, not {type(channel).__name__} ({channel!r}).")
