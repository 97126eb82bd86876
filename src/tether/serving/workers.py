"""How many worker processes serve this app, as the server that started this
one was told: what ``memory://`` fan-out warns about, since it reaches one
worker only.

No server tells its app that number, so it is read from the server's own
objects on the main thread's stack (of its root greenlet too, under gevent),
where each server keeps them while it serves: gunicorn's arbiter and worker
(``cfg.workers``, any worker class, ``UvicornWorker`` included), uvicorn's
``Config`` (``workers``; a reloader runs one) and hypercorn's (``workers``).
Elsewhere (granian, daphne, a server of one's own) the count is unknown:
``None``, and nothing is said.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import types
import typing as t

__all__ = ["worker_count"]


def worker_count() -> tuple[int, str] | None:
    """The number of worker processes the server was started with, and the
    server's name; ``None`` when no known server is found. Read once per
    process: a forked worker reads its own."""
    pid = os.getpid()
    if pid not in _counted:
        _counted.clear()
        _counted[pid] = _count()
    return _counted[pid]


_counted: dict[int, tuple[int, str] | None] = {}


def _count() -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for frame in _main_frames():
        for name in ("self", "config"):
            found = _workers_of(frame.f_locals.get(name))
            if found is not None and (best is None or found[0] > best[0]):
                best = found
    return best


def _workers_of(obj: t.Any) -> tuple[int, str] | None:
    if obj is None:
        return None
    module = type(obj).__module__
    server = module.partition(".")[0]
    if server in ("gunicorn", "uvicorn_worker"):
        workers = getattr(getattr(obj, "cfg", None), "workers", None)
        return (workers, "gunicorn") if isinstance(workers, int) else None
    if module in ("uvicorn.config", "hypercorn.config") and type(obj).__name__ == "Config":
        workers = getattr(obj, "workers", None)
        if not isinstance(workers, int) or getattr(obj, "reload", False):
            return (1, server)
        return (max(workers, 1), server)  # hypercorn's --workers 0: one process, no supervisor
    return None


def _main_frames() -> t.Iterator[types.FrameType]:
    """The frames of the main thread, innermost first, then those of the root
    greenlet when this thread runs greenlets (gevent: the server waits there)."""
    frame = _main_thread_frame()
    while frame is not None:
        yield frame
        frame = frame.f_back
    greenlet = sys.modules.get("greenlet")
    if greenlet is None:
        return
    root = greenlet.getcurrent()
    while root.parent is not None:
        root = root.parent
    frame = root.gr_frame
    while frame is not None:
        yield frame
        frame = frame.f_back


def _main_thread_frame() -> types.FrameType | None:
    main = threading.main_thread()
    if threading.current_thread() is main:
        return sys._getframe()
    # On Python 3.11 a collection that starts inside sys._current_frames() can
    # deadlock it (CPython gh-106883): none starts while it runs.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return sys._current_frames().get(main.ident or 0)
    finally:
        if enabled:
            gc.enable()
