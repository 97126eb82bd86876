"""Running user functions, sync or async, from sync or async code.

The request pipeline and context teardown are written once, as generators that
yield ``(function, args, kwargs)`` for every user function they call (views,
hooks, error handlers, teardowns) and are sent back its result, or thrown its
exception. :func:`run` drives them from synchronous code: a coroutine result (an
``async def`` function) runs to completion on an event loop kept for the
current thread, so async views work under WSGI without a new loop per request.
:func:`run_async` drives them from a coroutine and awaits coroutine results on
the running loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import typing as t
from collections.abc import Generator
from types import CoroutineType

from .greenlets import isolate_greenlet_loops

__all__ = ["NO_KWARGS", "Step", "Steps", "call_each", "call_one", "run", "run_async", "run_coroutine"]

T = t.TypeVar("T")
Step = tuple[t.Callable[..., t.Any], tuple[t.Any, ...], dict[str, t.Any]]
Steps = Generator[Step, t.Any, T]
NO_KWARGS: dict[str, t.Any] = {}

_thread = threading.local()


def call_one(func: t.Callable[..., T], args: tuple[t.Any, ...] = (), kwargs: dict[str, t.Any] = NO_KWARGS) -> Steps[T]:
    """The steps of one call."""
    return t.cast(T, (yield func, args, kwargs))


def call_each(funcs: t.Iterable[t.Callable[[], t.Any]]) -> Steps[None]:
    """The steps of calling each of ``funcs`` in turn."""
    for func in funcs:
        yield func, (), NO_KWARGS


def run_coroutine(coro: t.Awaitable[T]) -> T:
    """Run ``coro`` to completion from synchronous code, on this thread's loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        close = getattr(coro, "close", None)
        if close is not None:
            close()
        raise RuntimeError(
            "An async function was called from synchronous code that runs inside an event "
            "loop, which would block that loop. Call it with 'await' from async code instead."
        )
    loop = getattr(_thread, "loop", None)
    if loop is None or loop.is_closed():
        isolate_greenlet_loops()
        loop = _thread.loop = asyncio.new_event_loop()
    return _in_shared_context(loop, coro)


class _SharedContext:
    """The Context the async steps run in from one synchronous Context, on one
    thread, and the values that Context had when they last ran."""

    __slots__ = ("context", "owner", "seen")

    def __init__(self, context: contextvars.Context) -> None:
        self.context = context
        self.owner = threading.get_ident()
        self.seen: dict[contextvars.ContextVar[t.Any], t.Any] = {}


#: Where the sync driver runs coroutines: one Context for all the async steps
#: of a request (its hooks, its view, each chunk of its async body), as they
#: would share one Task under ASGI. So what one step leaves set, such as a
#: trace span made current across a generator's ``yield``, is still set at the
#: next, and is reset in the Context it was set in.
_shared: contextvars.ContextVar[_SharedContext | None] = contextvars.ContextVar("tether.async_steps", default=None)
_MISSING = object()


def _in_shared_context(loop: asyncio.AbstractEventLoop, coro: t.Awaitable[T]) -> T:
    """Run ``coro`` on ``loop`` in the shared Context of the caller's: what the
    synchronous code changed since is carried in first, and what the coroutine
    changed is carried back after, as asgiref does for Flask."""
    here = contextvars.copy_context()
    shared = _shared.get()
    if shared is None or shared.owner != threading.get_ident():
        shared = _SharedContext(here)
        _shared.set(shared)
    else:
        changed = [(var, value) for var, value in here.items() if shared.seen.get(var, _MISSING) is not value]
        if changed:
            shared.context.run(_set_all, changed)
    try:
        task = coro if asyncio.iscoroutine(coro) else _awaited(coro)
        return loop.run_until_complete(loop.create_task(task, context=shared.context))
    finally:
        for var, value in shared.context.items():
            if var is not _shared and here.get(var, _MISSING) is not value:
                var.set(value)
        shared.seen = dict(contextvars.copy_context().items())


def _set_all(values: list[tuple[contextvars.ContextVar[t.Any], t.Any]]) -> None:
    for var, value in values:
        var.set(value)


async def _awaited(awaitable: t.Awaitable[T]) -> T:
    return await awaitable


def run(steps: Steps[T]) -> T:
    """Drive ``steps`` synchronously."""
    send = steps.send
    value: t.Any = None
    while True:
        try:
            func, args, kwargs = send(value)
        except StopIteration as stop:
            return stop.value
        try:
            value = func(*args, **kwargs)
            if type(value) is CoroutineType:
                value = run_coroutine(value)
        except BaseException as e:  # handed to the pipeline, which decides
            send = _thrower(steps, e)
            value = None
        else:
            send = steps.send


async def run_async(steps: Steps[T]) -> T:
    """Drive ``steps`` from a coroutine, awaiting async functions on the running loop."""
    send = steps.send
    value: t.Any = None
    while True:
        try:
            func, args, kwargs = send(value)
        except StopIteration as stop:
            return stop.value
        try:
            value = func(*args, **kwargs)
            if type(value) is CoroutineType:
                value = await value
        except BaseException as e:
            send = _thrower(steps, e)
            value = None
        else:
            send = steps.send


def _thrower(steps: Steps[t.Any], error: BaseException) -> t.Callable[[t.Any], Step]:
    def throw(_: t.Any) -> Step:
        return steps.throw(error)

    return throw
