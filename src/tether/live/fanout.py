"""Fan-out that stops at the worker's edge: a ``memory://`` broadcast reaches
the subscribers of the process that publishes, and each process runs its own
``@app.periodic`` services. Under several worker processes (``uvicorn
--workers N``, ``gunicorn -w N``: ``tether.serving.workers``) that splits an
app's live features in N, which nothing else would show: the app says so
once, naming the setting that joins them."""

from __future__ import annotations

import logging
import threading
import typing as t
import weakref
from urllib.parse import urlsplit

from ..serving.workers import worker_count

__all__ = ["warn_if_split"]

_warned: weakref.WeakSet[t.Any] = weakref.WeakSet()
_lock = threading.Lock()


class LiveApp(t.Protocol):
    @property
    def config(self) -> t.Any: ...

    @property
    def logger(self) -> logging.Logger: ...


def warn_if_split(app: LiveApp, services: t.Iterable[str] = ()) -> bool:
    """Warn, once per app and process, when the app serves from several worker
    processes with a ``memory://`` broadcast; ``services`` are its per-worker
    periodic services. Returns whether it warned now."""
    url = app.config.get("BROADCAST_URL")
    if not isinstance(url, str) or urlsplit(url).scheme != "memory":
        return False
    with _lock:
        if app in _warned:
            return False
    counted = worker_count()
    if counted is None or counted[0] < 2:
        return False
    with _lock:
        if app in _warned:
            return False
        _warned.add(app)
    workers, server = counted
    names = ", ".join(services)
    app.logger.warning(
        "This app is served by %d worker processes (%s) and its BROADCAST_URL is %r: a broadcast reaches only the "
        "subscribers of the worker that publishes it%s. To reach every worker, set BROADCAST_URL to "
        "'redis://host:port/db' (in the environment: TETHER_BROADCAST_URL, read by app.config.from_prefixed_env())%s.",
        workers, server, url,
        f", and each worker runs its own periodic services ({names})" if names else "",
        "; a service to run once per interval across them takes @app.periodic(..., across=\"cluster\")" if names else "",
    )
    return True
