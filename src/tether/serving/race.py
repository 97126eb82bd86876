"""The next item of a stream, or the end of whoever waits for it.

A streamed body, an SSE source and a relayed subscription all wait for their
next item while something else may end the wait first: the client leaving,
the server shutting down, or a keep-alive timeout. :class:`NextItem` is that
race, written once.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import typing as t
from collections.abc import AsyncIterator, Iterable

from ..contexts.propagation import wait_through_cancellation

__all__ = ["NOTHING_READY", "NextItem", "Outcome", "Pushable", "Relayable", "RelayedItems", "Sink", "is_pushable", "is_relayable"]

T = t.TypeVar("T")


class Outcome(enum.Enum):
    """How a wait ended without an item."""

    #: One of the ``stop`` futures completed before the item came.
    STOPPED = "stopped"
    #: The timeout passed before the item came; the fetch goes on.
    TIMED_OUT = "timed out"


#: What ``poll()`` returns when no item is ready.
NOTHING_READY: t.Any = object()

#: Takes an item put while a wait is on, with its id; ``False`` if it cannot now
#: (the item is then queued as usual).
Sink = t.Callable[[t.Any, str], bool]


@t.runtime_checkable
class Pushable(t.Protocol):
    """A source that holds its items for the taker, and can hand them to a sink
    the moment they are put: a broadcast subscription's ``deliveries()``
    (``tether.live.broadcast.subscription.Deliveries``). :class:`NextItem` waits on it
    without a task or ``asyncio.wait`` per item."""

    def poll(self) -> t.Any:
        """An item it holds, or :data:`NOTHING_READY`; raises ``StopAsyncIteration`` once it ended."""

    def ready(self) -> asyncio.Future[None]:
        """A future of the running loop, done once it may hold an item."""

    def push_to(self, sink: Sink | None) -> None:
        """While nothing is held, hand items put on this thread to ``sink``; ``None`` stops that."""

    def close(self) -> None:
        """Stop taking items."""


@t.runtime_checkable
class Relayable(t.Protocol):
    """What a WebSocket relay or an event stream sends item by item with its
    ids: a broadcast subscription (``tether.live.broadcast.Subscription``)."""

    #: Whether it follows several channels (its items are objects).
    many: bool

    def deliveries(self) -> RelayedItems:
        """Its items as they are held, each with its id."""


class RelayedItems(Pushable, t.Protocol):
    """A :class:`Relayable`'s items; ``wire_form(item)`` is what a relay sends of one."""

    many: bool

    def wire_form(self, item: t.Any) -> t.Any: ...


_CONFORMING: dict[tuple[type, type], bool] = {}


def _conforms(obj: object, protocol: t.Any) -> bool:
    """``isinstance(obj, protocol)`` for a runtime protocol, remembered per type:
    the check looks every member up each time (6 to 11 µs on Python 3.11), and
    each stream and relay makes it once, thousands at a time in a fan-out."""
    key = (type(obj), protocol)
    known = _CONFORMING.get(key)
    if known is None:
        known = _CONFORMING[key] = isinstance(obj, protocol)
    return known


def is_pushable(obj: object) -> t.TypeGuard[Pushable]:
    return _conforms(obj, Pushable)


def is_relayable(obj: object) -> t.TypeGuard[Relayable]:
    return _conforms(obj, Relayable)


class NextItem(t.Generic[T]):
    """Fetches the items of ``iterator`` one at a time, each raced against
    futures that stop the wait.

    Each fetch runs as a task in ``context`` (by default, a copy of the current
    one made at the first fetch), so a generator that reads ``request`` or
    ``g`` sees the context it was meant for. Every fetch runs in that one
    Context, as a generator's steps run in one: what a step sets (a span made
    current across a ``yield``) is still set at the next. :meth:`aclose` cancels a fetch still
    running and closes the iterator, in that Context too.

    A :class:`Pushable` source is waited for without a task or
    ``asyncio.wait`` per item: ``poll()`` hands over an item it holds, and
    ``ready()`` gives a future that is done once it may hold one. That is the
    path of a message fanned out to thousands of subscribers. If a ``push``
    callable is given, items that come while the wait is on go to ``push``
    instead (``tether.serving.direct``), and the wait goes on: one wait serves
    any number of pushed items.
    """

    def __init__(
        self,
        iterator: AsyncIterator[T] | Pushable,
        context: contextvars.Context | None = None,
        push: Sink | None = None,
    ) -> None:
        self._iterator = iterator
        self._context = context
        held = iterator if is_pushable(iterator) else None
        #: Sets (and with ``None`` unsets) where items go while a wait is on.
        self._push_to: t.Callable[[Sink | None], None] | None = held.push_to if held is not None and push is not None else None
        self._push = push
        self._pending: asyncio.Future[T] | None = None
        self._held = held
        #: The wait under way on the polled path, which a stop future or the timeout ends.
        self._waiter: asyncio.Future[None] | None = None
        self._watched: set[asyncio.Future[t.Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def get(self, stop: Iterable[asyncio.Future[t.Any]] = (), timeout: float | None = None) -> T | Outcome:
        """The next item, :attr:`Outcome.STOPPED` or :attr:`Outcome.TIMED_OUT`; raises
        ``StopAsyncIteration`` when the iterator ends. After :attr:`Outcome.TIMED_OUT`
        the same fetch is still awaited by the next call."""
        if self._held is not None:
            return await self._get_polled(self._held.poll, self._held.ready, stop, timeout)
        return await self._get_fetched(stop, timeout)

    async def _get_polled(
        self,
        poll: t.Callable[[], t.Any],
        ready: t.Callable[[], asyncio.Future[None]],
        stop: Iterable[asyncio.Future[t.Any]],
        timeout: float | None,
    ) -> t.Any:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            while True:
                for future in stop:
                    if future.done():
                        return Outcome.STOPPED
                item = poll()
                if item is not NOTHING_READY:
                    return item
                if deadline is not None:
                    if loop.time() >= deadline:
                        return Outcome.TIMED_OUT
                    if self._timer is None:
                        self._timer = loop.call_at(deadline, self._timer_fired)
                self._waiter = ready()
                for future in stop:
                    if future not in self._watched:  # one callback per stop future, for every wait
                        self._watched.add(future)
                        future.add_done_callback(self._interrupt)
                if self._push_to is None:
                    await self._waiter
                    continue
                self._push_to(self._push)
                try:
                    await self._waiter
                finally:
                    self._push_to(None)
        finally:
            self._waiter = None

    def _interrupt(self, _: object = None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _timer_fired(self) -> None:
        """The timer is kept across waits, and moved on only when it fires
        before the current deadline: one timer per timeout, not per item."""
        self._timer = None
        self._interrupt()

    async def _get_fetched(self, stop: Iterable[asyncio.Future[t.Any]], timeout: float | None) -> T | Outcome:
        pending = self._pending
        if pending is None:
            fetch = t.cast(AsyncIterator[T], self._iterator).__anext__()
            if isinstance(fetch, asyncio.Future):
                pending = fetch
            else:
                coro = fetch if asyncio.iscoroutine(fetch) else _awaited(fetch)
                if self._context is None:
                    self._context = contextvars.copy_context()
                pending = asyncio.get_running_loop().create_task(coro, context=self._context)
            self._pending = pending
        done, _ = await asyncio.wait({pending, *stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if len(done) > (pending in done):
            return Outcome.STOPPED
        if not done:
            return Outcome.TIMED_OUT
        self._pending = None
        return pending.result()

    async def aclose(self) -> None:
        """Cancel the fetch under way, if any, then close the iterator; this
        returns once both are done, however often it is cancelled meanwhile
        (a teardown comes after the source's ``finally``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        closing = asyncio.get_running_loop().create_task(self._close(), context=self._context)
        await wait_through_cancellation(closing)

    async def _close(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            if not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            elif not pending.cancelled():
                pending.exception()  # an item or an end that came with the stop: nobody takes it
        if self._held is not None:  # closing it is synchronous
            self._held.close()
            return
        aclose = getattr(self._iterator, "aclose", None)  # an async generator's; a bare async iterator has none
        if aclose is not None:
            await aclose()


async def _awaited(awaitable: t.Awaitable[T]) -> T:
    return await awaitable
