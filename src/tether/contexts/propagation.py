"""Carrying contexts into code that runs elsewhere: a function called in another
thread (``copy_current_request_context``), an iterator consumed later
(``stream_with_context``), work started here and run later
(:func:`carried_context`); and :func:`wait_through_cancellation`, which
whatever closes such work before a teardown waits with."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import typing as t

from .ctx import _cv_request

__all__ = [
    "OWN_PREFIX",
    "carried_context",
    "copy_current_request_context",
    "stream_with_context",
    "wait_through_cancellation",
]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
T = t.TypeVar("T")
P = t.ParamSpec("P")


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
