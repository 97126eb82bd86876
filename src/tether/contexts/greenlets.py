"""Event loops under gevent: one running loop per greenlet, not per OS thread.

asyncio keeps "the running loop" per OS thread. Under gevent's monkey-patching
every greenlet of a worker shares that thread, so a loop running in one
greenlet (the background loop of ``app.spawn`` and ``@app.periodic``, or the
loop an async view runs on) would be "running" for all the others while it
waits: their own async views and streams would be refused as "called from
inside an event loop". :func:`isolate_greenlet_loops` makes the running loop
follow the greenlet, as a ``contextvars`` value does.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import typing as t
import weakref

__all__ = ["isolate_greenlet_loops"]

_lock = threading.Lock()
_installed = False


def isolate_greenlet_loops() -> None:
    """Once gevent has patched ``threading``: save each greenlet's running loop
    when it is switched out and restore it when it is switched back in."""
    global _installed
    if _installed:
        return
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return
    import greenlet  # type: ignore[import-untyped]  # gevent depends on it

    with _lock:
        if _installed:
            return
        loops: weakref.WeakKeyDictionary[t.Any, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
        previous: t.Callable[[str, t.Any], t.Any] | None = None

        def trace(event: str, args: t.Any) -> None:
            if event in ("switch", "throw"):
                origin, target = args
                running = asyncio._get_running_loop()
                if running is not None:
                    loops[origin] = running
                asyncio._set_running_loop(loops.pop(target, None))
            if previous is not None:
                previous(event, args)

        previous = greenlet.settrace(trace)
        _installed = True
