"""The ASGI lifespan adapter: ``before_serving`` at startup, ``after_serving`` at
shutdown, and noticing that the server has begun to shut down.

Servers finish in-flight requests before they send ``lifespan.shutdown``, so a
stream or socket that never ends on its own would hold a graceful shutdown up
forever. At startup this module wraps the SIGINT and SIGTERM handlers the server
installed (when it serves from the main thread, as uvicorn and hypercorn do):
the wrapper sets the app's *stopping* event, which ends open streams and
sockets, then calls the server's own handler.

A server may send no lifespan at all (daphne, ``uvicorn --lifespan off``):
then :func:`start_without_lifespan` does the startup's work before the first
request is answered, on the serving loop, once, and the stop comes when that
loop ends (``ServingState.stop_when_loop_ends``), or at SIGINT/SIGTERM, since
uvicorn ends the process with the signal once it has stopped serving.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import typing as t

from ..typing import Message, Receive, Send
from .lifecycle import ServingState, StartupRefused, Stopping

__all__ = ["serve_lifespan", "start_without_lifespan"]


async def serve_lifespan(serving: ServingState, scope: Message, receive: Receive, send: Send) -> None:
    """Serve the lifespan scope: startup, then shutdown, as the server says."""
    stopping = Stopping()
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            serving.stopping = stopping
            if not await _phase(serving, serving.startup, "before_serving", "lifespan.startup", send):
                return
            _watch_signals(asyncio.get_running_loop(), stopping)
        elif message["type"] == "lifespan.shutdown":
            await _phase(serving, serving.shutdown, "after_serving", "lifespan.shutdown", send)
            return


async def start_without_lifespan(serving: ServingState) -> None:
    """Before the first request of a server that sent no lifespan: what
    ``lifespan.startup`` does, once, however many requests arrive together.
    A failure fails the requests that waited for it; the next one tries again."""
    starting = serving.starting
    if starting is None:
        if serving.stopping is not None:  # a lifespan ran, and is shutting the app down: no new start
            return
        starting = serving.starting = asyncio.get_running_loop().create_task(_start(serving))
    await asyncio.shield(starting)


async def _start(serving: ServingState) -> None:
    loop = asyncio.get_running_loop()
    stopping = serving.stopping = Stopping()
    try:
        await serving.startup()
    except BaseException as e:
        serving.starting = None
        serving.stopping = None
        _log_failure(serving, e, "before_serving")
        raise
    serving.stop_when_loop_ends(loop)
    _watch_signals(loop, stopping, serving.shutdown_soon)


async def _phase(
    serving: ServingState, run: t.Callable[[], t.Awaitable[None]], hook: str, event: str, send: Send
) -> bool:
    """Run one lifespan phase and tell the server how it went."""
    try:
        await run()
    except BaseException as e:
        _log_failure(serving, e, hook)
        message = str(e) if isinstance(e, StartupRefused) else f"A {hook} function failed with {type(e).__name__}: {e}"
        await send({"type": f"{event}.failed", "message": message})
        return False
    await send({"type": f"{event}.complete"})
    return True


def _log_failure(serving: ServingState, error: BaseException, hook: str) -> None:
    """A refused start is logged as its message, which says what to change
    (nothing of the app ran yet); a failing hook with its traceback."""
    if isinstance(error, StartupRefused):
        serving.app.logger.error("The app cannot start: %s", error)
    else:
        serving.app.logger.error("A %s function failed.", hook, exc_info=error)


def _watch_signals(
    loop: asyncio.AbstractEventLoop,
    stopping: Stopping,
    shutdown_first: t.Callable[[t.Callable[[], None]], None] | None = None,
) -> None:
    """Wrap the server's SIGINT/SIGTERM handlers (from the main thread only): the
    wrapper ends open streams and sockets, then calls the server's handler;
    with ``shutdown_first``, only once that shutdown is done (a second signal
    goes to the server at once)."""
    if threading.current_thread() is not threading.main_thread():
        return
    forwarding = False
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def handler(sig: int, frame: t.Any, previous: t.Callable[[int, t.Any], t.Any] = previous) -> None:
            nonlocal forwarding
            loop.call_soon_threadsafe(stopping.set)
            if shutdown_first is None or forwarding:
                previous(sig, frame)
                return
            forwarding = True
            shutdown_first(lambda: previous(sig, frame))

        signal.signal(signum, handler)
