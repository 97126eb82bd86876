"""Which namespace an app's broadcast and cluster locks live in on a shared
Redis: ``BROADCAST_NAMESPACE``, by default the app's import name.

An import name says which project an app is when it is a package or module
name of its own (``shop``, ``examples.trading.app``). A generic one (``app``,
``__main__``, ``wsgi``) is shared by many projects, and by one project run
two ways (``python app.py`` is ``__main__``, its Celery worker imports
``app``): then the app says so once, at startup, naming the setting to set.
"""

from __future__ import annotations

import logging
import threading
import typing as t

from . import redacted

__all__ = ["GENERIC_NAMES", "namespace_for"]

#: Import names too common to tell one project from another.
GENERIC_NAMES = frozenset({"__main__", "app", "application", "main", "wsgi", "asgi", "server", "run", "api", "web"})

_warned: set[str] = set()
_lock = threading.Lock()


class NamedApp(t.Protocol):
    import_name: str

    @property
    def config(self) -> t.Any: ...

    @property
    def logger(self) -> logging.Logger: ...


def namespace_for(app: NamedApp) -> str:
    """The app's broadcast namespace; warns once when a shared server would
    have only a generic import name to keep this project apart by."""
    configured = app.config.get("BROADCAST_NAMESPACE")
    if configured:
        return t.cast(str, configured)
    name = app.import_name
    shared = not str(app.config.get("BROADCAST_URL", "memory://")).startswith("memory:")
    if shared and name.rpartition(".")[2] in GENERIC_NAMES:
        with _lock:
            first = name not in _warned
            _warned.add(name)
        if first:
            app.logger.warning(
                "The broadcast namespace is the import name %r, which other projects (or this one run another "
                "way) may share on %s: set BROADCAST_NAMESPACE (TETHER_BROADCAST_NAMESPACE) to a name of this "
                "project's own, the same in its web workers, Celery workers and scripts.",
                name, redacted(app.config["BROADCAST_URL"]),
            )
    return name
