"""Carrying contexts into code that runs elsewhere: a function called in another
thread (``copy_current_request_context``), an iterator consumed later
(``stream_with_context``), a sync iterable fetched item by item in a thread pool
from async code (:class:`ThreadedIterator`), work started here and run later
(:func:`carried_context`)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import typing as t

from .ctx import _cv_request

__all__ = [
    "OWN_PREFIX",
    "ThreadedIterator",
    "carried_context",
    "copy_current_request_context",
    "stream_with_context",
    "wait_through_cancellation",
]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
T = t.TypeVar("T")
P = t.ParamSpec("P")


class HeldThread(t.Protocol):
    """One thread that runs the calls made through it, in order
    (``tether.serving.sync_pool.HeldThread``)."""

    def run(self, loop: asyncio.AbstractEventLoop, fn: t.Callable[..., T], *args: t.Any) -> asyncio.Future[T]: ...

    def release(self) -> None: ...


class Threads(t.Protocol):
    """Where a sync iterable is iterated from async code (``SyncPool``)."""

    def home(self) -> HeldThread | None:
        """The held thread the caller runs on (a sync view's), if any."""

    def hold(self) -> HeldThread:
        """A thread held for the caller until it releases it."""

#: How tether's own context variables are named: the app, request and WebSocket
#: contexts, a stream's sender, the running job.
OWN_PREFIX = "tether."


def carried_context() -> contextvars.Context:
    """A copy of the current Context without tether's own variables: what work
    started here and run elsewhere (a spawned job) carries along, such as the
    current trace span or a logging library's fields, while tether gives that
    work contexts of its own rather than the request's."""
    carried = contextvars.Context()
    values = [(var, value) for var, value in contextvars.copy_context().items() if not var.name.startswith(OWN_PREFIX)]
    carried.run(_set_all, values)
    return carried


def _set_all(values: list[tuple[contextvars.ContextVar[t.Any], t.Any]]) -> None:
    for var, value in values:
        var.set(value)


class ThreadedIterator:
    """A sync iterable, iterated from async code. Its items are fetched, and it
    is closed, on one thread (it may block there), inside a copy of the context
    it was created in, so a generator sees ``request`` and ``g`` and whatever
    it keeps per thread: the request's own thread when it is made by a sync
    view under ASGI, else one held for it from first use to close (under WSGI
    the request's thread iterates the body itself, and must stay free to send
    keep-alives while the source blocks).

    :meth:`aclose` waits for an item being fetched, then closes the source,
    and returns once its ``finally`` has run, even if the wait is cancelled: a
    request's teardown comes after it.
    """

    def __init__(self, iterable: t.Iterable[t.Any], threads: Threads) -> None:
        self._iterator = iter(iterable)
        self._threads = threads
        self._context = contextvars.copy_context()
        #: The thread of the request that made it, if that is a held thread.
        self._home = threads.home()
        #: The thread it runs on, from its first item: the home thread (not
        #: ours to release), or one held for it.
        self._thread: HeldThread | None = None
        self._owned = False
        self._closed = False

    def __aiter__(self) -> ThreadedIterator:
        return self

    def __anext__(self) -> asyncio.Future[t.Any]:
        thread = self._thread
        if thread is None:
            if self._home is not None and self._threads.home() is not self._home:
                thread = self._thread = self._home
            else:  # made elsewhere, or iterated on its home thread itself (which waits for it)
                thread = self._thread = self._threads.hold()
                self._owned = True
        return thread.run(asyncio.get_running_loop(), self._context.run, _next_or_stop, self._iterator)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is None:  # never iterated: nothing runs, nothing is held
            close = getattr(self._iterator, "close", None)
            if close is not None:
                self._context.run(close)
            return
        close = getattr(self._iterator, "close", None)
        closed = thread.run(asyncio.get_running_loop(), self._context.run, close or _nothing)
        if self._owned:
            thread.release()
        await wait_through_cancellation(closed)


def _nothing() -> None:
    """The close of an iterator that has none."""


async def wait_through_cancellation(future: asyncio.Future[t.Any]) -> None:
    """Wait for ``future`` to finish; a cancellation meanwhile is raised after it.

    What must come before a teardown (a source's close) is waited for this way,
    so that a second cancellation (hypercorn sends one at shutdown) cannot
    start the teardown while it still runs."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    future.result()


def _next_or_stop(iterator: t.Iterator[t.Any]) -> t.Any:
    try:
        return next(iterator)
    except StopIteration:
        raise StopAsyncIteration from None


def copy_current_request_context(f: F) -> F:
    """Decorate ``f`` so it runs with a copy of the current request context pushed,
    wherever it is called (typically in a thread started by a view)."""
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'copy_current_request_context' can only be used while a request context is "
            "current, such as in a view function."
        )
    copied = ctx.copy()

    @functools.wraps(f)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        with copied:
            return f(*args, **kwargs)

    return t.cast(F, wrapper)


@t.overload
def stream_with_context(generator_or_function: t.Iterable[T]) -> t.Iterator[T]: ...
@t.overload
def stream_with_context(generator_or_function: t.Callable[P, t.Iterable[T]]) -> t.Callable[P, t.Iterator[T]]: ...
def stream_with_context(
    generator_or_function: t.Iterable[T] | t.Callable[P, t.Iterable[T]],
) -> t.Iterator[T] | t.Callable[P, t.Iterator[T]]:
    """Kept for Flask compatibility: tether already produces a returned body
    inside its request's context. This also makes an iterator consumed anywhere
    else (another thread, a later call) see the context it was created in."""
    if not hasattr(generator_or_function, "__next__") and callable(generator_or_function):
        function = generator_or_function

        @functools.wraps(function)
        def decorator(*args: P.args, **kwargs: P.kwargs) -> t.Iterator[T]:
            return stream_with_context(function(*args, **kwargs))

        return decorator
    return _in_context(contextvars.copy_context(), iter(t.cast("t.Iterable[T]", generator_or_function)))


def _in_context(context: contextvars.Context, iterator: t.Iterator[t.Any]) -> t.Iterator[t.Any]:
    try:
        while True:
            try:
                item = context.run(next, iterator)
            except StopIteration:
                return
            yield item
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            context.run(close)
