"""The ASGI lifespan adapter: ``before_serving`` at startup, ``after_serving`` at
shutdown, and noticing that the server has begun to shut down.

Servers finish in-flight requests before they send ``lifespan.shutdown``, so a
stream or socket that never ends on its own would hold a graceful shutdown up
forever. At startup this module wraps the SIGINT and SIGTERM handlers the server
installed (when it serves from the main thread, as uvicorn and hypercorn do):
the wrapper sets the app's *stopping* event, which ends open streams and
sockets, then calls the server's own handler.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import typing as t

if t.TYPE_CHECKING:
    from .application import Application

__all__ = ["serve_lifespan"]

Message = dict[str, t.Any]


async def serve_lifespan(
    app: Application,
    scope: dict[str, t.Any],
    receive: t.Callable[[], t.Awaitable[Message]],
    send: t.Callable[[Message], t.Awaitable[None]],
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            stopping = asyncio.Event()
            app.__dict__["_tether_stopping"] = stopping
            try:
                await app.startup()
            except BaseException as e:
                app.logger.exception("A before_serving function failed; the app does not start.")
                await send({"type": "lifespan.startup.failed", "message": _failure("before_serving", e)})
                return
            _watch_signals(asyncio.get_running_loop(), stopping)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            stopping = app.__dict__.get("_tether_stopping")
            if stopping is not None:
                stopping.set()
            try:
                await app.shutdown()
            except BaseException as e:
                app.logger.exception("An after_serving function failed.")
                await send({"type": "lifespan.shutdown.failed", "message": _failure("after_serving", e)})
                return
            await send({"type": "lifespan.shutdown.complete"})
            return


def _failure(hook: str, error: BaseException) -> str:
    return f"A {hook} function failed with {type(error).__name__}: {error}"


def _watch_signals(loop: asyncio.AbstractEventLoop, stopping: asyncio.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def handler(sig: int, frame: t.Any, previous: t.Callable[[int, t.Any], t.Any] = previous) -> None:
            loop.call_soon_threadsafe(stopping.set)
            previous(sig, frame)

        signal.signal(signum, handler)
