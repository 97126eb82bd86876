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
from concurrent.futures import Executor, Future

from .ctx import _cv_request

__all__ = ["OWN_PREFIX", "ThreadedIterator", "carried_context", "copy_current_request_context", "stream_with_context"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

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
    """A sync iterable, iterated from async code: each item is fetched in
    ``pool`` (it may block) inside a copy of the context it was created in, so a
    generator source still sees ``request`` and ``g``. Closing it while an item
    is being fetched closes the source once that fetch returns: a generator
    cannot be closed while it runs, and a blocked one must not hold up the close.
    """

    def __init__(self, iterable: t.Iterable[t.Any], pool: Executor) -> None:
        self._iterator = iter(iterable)
        self._pool = pool
        self._context = contextvars.copy_context()
        self._running: Future[t.Any] | None = None

    def __aiter__(self) -> ThreadedIterator:
        return self

    def __anext__(self) -> asyncio.Future[t.Any]:
        self._running = self._pool.submit(self._context.run, _next_or_stop, self._iterator)
        return asyncio.wrap_future(self._running)

    async def aclose(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is None:
            return
        running = self._running
        if running is not None and not running.done():
            # Called in the fetching thread once the generator has stopped running.
            running.add_done_callback(lambda _: self._context.run(close))
        else:
            self._context.run(close)


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


def stream_with_context(generator_or_function: t.Any) -> t.Any:
    """Kept for Flask compatibility: tether already produces a returned body
    inside its request's context. This also makes an iterator consumed anywhere
    else (another thread, a later call) see the context it was created in."""
    if not hasattr(generator_or_function, "__next__") and callable(generator_or_function):
        function = generator_or_function

        @functools.wraps(function)
        def decorator(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return stream_with_context(function(*args, **kwargs))

        return decorator
    return _in_context(contextvars.copy_context(), iter(generator_or_function))


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
