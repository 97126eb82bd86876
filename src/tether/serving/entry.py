"""One object served by WSGI and ASGI servers alike, with no flag.

An object whose class defines ``__call__(*args)`` (two arguments for WSGI,
three for ASGI) is served by both kinds of server once :func:`serve_both`
gives the instance a :class:`ProtocolEntry`.
"""

from __future__ import annotations

import inspect
import typing as t
import weakref

__all__ = ["ProtocolEntry", "serve_both"]


class WSGIAndASGI(t.Protocol):
    """An object that answers ``obj(environ, start_response)`` and ``obj(scope, receive, send)``."""

    def __call__(self, *args: t.Any) -> t.Any: ...


async def _asgi_signature(scope: t.Any, receive: t.Any, send: t.Any) -> None:
    """Lends its code object (a coroutine's) to :class:`ProtocolEntry`."""


class ProtocolEntry:
    """``app.__call__`` as read through the instance: how one object is served by
    WSGI and ASGI servers alike, with no flag.

    ASGI servers pick the interface by asking whether ``app.__call__`` is a
    coroutine function (uvicorn: ``asyncio.iscoroutinefunction``, hypercorn:
    ``inspect.iscoroutinefunction``); WSGI servers just call ``app(environ,
    start_response)``, which goes through the class's ``__call__`` and never
    sees this. So this function-like object carries a coroutine's code object,
    which makes both checks say yes, and calling it calls the app.
    """

    def __init__(self, app: WSGIAndASGI) -> None:
        self._app = weakref.ref(app)  # it lives in the app's own __dict__
        self.__name__ = self.__qualname__ = "__call__"
        self.__code__ = _asgi_signature.__code__
        self.__defaults__ = None
        self.__kwdefaults__ = None
        self.__annotations__: dict[str, t.Any] = {}
        mark = getattr(inspect, "markcoroutinefunction", None)
        if mark is not None:
            mark(self)

    def __call__(self, *args: t.Any) -> t.Any:
        app: t.Any = self._app()
        return type(app).__call__(app, *args)


def serve_both(app: WSGIAndASGI) -> None:
    """Make ``app`` (an instance) look like an ASGI 3 application to ASGI servers,
    while WSGI servers keep calling it as before."""
    vars(app)["__call__"] = ProtocolEntry(app)
