"""A sync iterable iterated from async code, on one held thread of the pool.

Every place that reads a sync source from the loop goes through
:class:`ThreadedIterator`: a sync view's streamed body, an event stream or a
WebSocket relay over a sync source, a body produced by a wrapped WSGI entry.
So they all end the same way when their stream is cut, however often it is
cancelled: the item being fetched finishes, then the source is closed on the
same thread, and only then may the request's teardown start.
"""

from __future__ import annotations

import asyncio
import contextvars
import typing as t

from ..contexts.propagation import wait_through_cancellation
from .sync_pool import HeldThread, SyncPool

__all__ = ["ThreadedIterator"]


class ThreadedIterator:
    """A sync iterable, iterated from async code. Its items are fetched, and it
    is closed, on one thread (it may block there), inside a copy of the context
    it was created in, so a generator sees ``request`` and ``g`` and whatever
    it keeps per thread: the request's own thread when it is made by a sync
    view under ASGI, else one held for it from first use to close (under WSGI
    the request's thread iterates the body itself, and must stay free to send
    keep-alives while the source blocks). :meth:`on` makes one for a thread the
    caller holds and releases.

    ``each``, if given, is applied to every item on that thread.

    :meth:`aclose` waits for an item being fetched, then closes the source,
    and returns once its ``finally`` has run, even if the wait is cancelled: a
    request's teardown comes after it.
    """

    __slots__ = ("_iterator", "_pool", "_context", "_fetch", "_home", "_thread", "_owned", "_closed")

    def __init__(
        self,
        iterable: t.Iterable[t.Any],
        pool: SyncPool | None,
        *,
        context: contextvars.Context | None = None,
        each: t.Callable[[t.Any], t.Any] | None = None,
    ) -> None:
        self._iterator = iter(iterable)
        self._pool = pool
        self._context = context if context is not None else contextvars.copy_context()
        self._fetch: t.Callable[[t.Iterator[t.Any]], t.Any] = _next_or_stop if each is None else _mapped(each)
        #: The thread of the request that made it, if that is a held thread.
        self._home = pool.home() if pool is not None else None
        #: The thread it runs on, from its first item: the home thread (not
        #: ours to release), or one held for it.
        self._thread: HeldThread | None = None
        self._owned = False
        self._closed = False

    @classmethod
    def on(
        cls,
        thread: HeldThread,
        iterable: t.Iterable[t.Any],
        context: contextvars.Context,
        each: t.Callable[[t.Any], t.Any] | None = None,
    ) -> ThreadedIterator:
        """One iterated, and closed, on ``thread``, which the caller releases."""
        iterator = cls(iterable, None, context=context, each=each)
        iterator._thread = thread
        return iterator

    def __aiter__(self) -> ThreadedIterator:
        return self

    def __anext__(self) -> asyncio.Future[t.Any]:
        thread = self._thread
        if thread is None:
            assert self._pool is not None
            if self._home is not None and self._pool.home() is not self._home:
                thread = self._thread = self._home
            else:  # made elsewhere, or iterated on its home thread itself (which waits for it)
                thread = self._thread = self._pool.hold()
                self._owned = True
        return thread.run(asyncio.get_running_loop(), self._context.run, self._fetch, self._iterator)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        close = getattr(self._iterator, "close", None)
        if thread is None:  # never iterated: nothing runs, nothing is held
            if close is not None:
                self._context.run(close)
            return
        closed = thread.run(asyncio.get_running_loop(), self._context.run, close or _nothing)
        if self._owned:
            thread.release()
        await wait_through_cancellation(closed)


def _nothing() -> None:
    """The close of an iterator that has none."""


def _next_or_stop(iterator: t.Iterator[t.Any]) -> t.Any:
    try:
        return next(iterator)
    except StopIteration:
        raise StopAsyncIteration from None


def _mapped(each: t.Callable[[t.Any], t.Any]) -> t.Callable[[t.Iterator[t.Any]], t.Any]:
    def fetch(iterator: t.Iterator[t.Any]) -> t.Any:
        try:
            return each(next(iterator))
        except StopIteration:
            raise StopAsyncIteration from None

    return fetch
