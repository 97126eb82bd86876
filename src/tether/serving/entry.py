"""One object served by WSGI and ASGI servers alike, with no flag.

An object whose class defines ``__call__(*args)`` (two arguments for WSGI,
three for ASGI, or ASGI's as keywords, as daphne passes them) is served by
both kinds of server once :func:`install_protocol_entry` gives the instance a
:class:`ProtocolEntry`. A class made by :class:`ServesBoth` stays so when a
WSGI-only function replaces its ``__call__`` (an APM tool's patch, a
subclass's override): :class:`WSGIOnlyCall` takes the WSGI calls to that
function and the ASGI calls to ``asgi_app``.
"""

from __future__ import annotations

import inspect
import types
import typing as t
import weakref

__all__ = ["DualCall", "ProtocolEntry", "ServesBoth", "WSGIOnlyCall", "asgi_arguments", "asgi_call", "install_protocol_entry"]


class WSGIAndASGI(t.Protocol):
    """An object that answers ``obj(environ, start_response)`` and ``obj(scope, receive, send)``."""

    def __call__(self, *args: t.Any) -> t.Any: ...


async def _asgi_signature(scope: t.Any, receive: t.Any, send: t.Any) -> None:
    """Lends its code object (a coroutine's) to :class:`ProtocolEntry`."""


def asgi_arguments(args: tuple[t.Any, ...], scope: t.Any, receive: t.Any, send: t.Any) -> tuple[t.Any, ...]:
    """``(scope, receive, send)`` from a call that passed some or all of them as
    keywords (daphne calls ``app(scope=..., receive=..., send=...)``)."""
    given = (*args, *(value for value in (scope, receive, send) if value is not None))
    if len(given) != 3:
        raise TypeError(f"An ASGI application takes scope, receive and send; {len(given)} arguments were given.")
    return tuple(given)


def asgi_call(args: tuple[t.Any, ...], scope: t.Any, receive: t.Any, send: t.Any) -> tuple[t.Any, ...] | None:
    """The one place a call is told to be WSGI or ASGI: ``None`` for WSGI's two
    positional arguments (``environ, start_response``); else ASGI's three,
    given by position or, as daphne gives them, by name."""
    if len(args) == 2 and scope is None:
        return None
    if len(args) == 3:
        return args
    return asgi_arguments(args, scope, receive, send)


class DualCall:
    """``__call__`` for an object served by both kinds of server: WSGI calls go
    to its ``wsgi_app``, ASGI calls to its ``asgi_app``."""

    wsgi_app: t.Callable[..., t.Any]
    asgi_app: t.Callable[..., t.Any]

    def __call__(self, *args: t.Any, scope: t.Any = None, receive: t.Any = None, send: t.Any = None) -> t.Any:
        """WSGI with two arguments (``environ, start_response``), ASGI 3 with three,
        given by position or, as daphne gives them, by name."""
        asgi = asgi_call(args, scope, receive, send)
        return self.wsgi_app(*args) if asgi is None else self.asgi_app(*asgi)


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

    def __call__(self, *args: t.Any, scope: t.Any = None, receive: t.Any = None, send: t.Any = None) -> t.Any:
        app: t.Any = self._app()
        if scope is None and receive is None and send is None:
            return type(app).__call__(app, *args)
        return type(app).__call__(app, *asgi_arguments(args, scope, receive, send))


def install_protocol_entry(app: WSGIAndASGI) -> None:
    """Make ``app`` (an instance) look like an ASGI 3 application to ASGI servers,
    while it stays the WSGI application WSGI servers call."""
    vars(app)["__call__"] = ProtocolEntry(app)


def _wsgi_only(func: t.Any) -> bool:
    """Whether ``func`` (a class's ``__call__``) takes WSGI's two arguments and
    nothing else: ``(self, environ, start_response)``, no ``*args``."""
    if isinstance(func, WSGIOnlyCall) or not callable(func):
        return False
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 3 and all(p.default is p.empty for p in positional)


class WSGIOnlyCall:
    """A class's ``__call__`` that was replaced by a WSGI-only function: WSGI
    calls go to that function (and, through it, to whatever it wraps); ASGI
    calls go to ``app.asgi_app``, which serves HTTP through the WSGI chain
    (``tether.serving.wsgi_chain``) so that the function still sees them."""

    def __init__(self, wsgi: t.Callable[..., t.Any]) -> None:
        self.wsgi = wsgi
        self.__name__ = self.__qualname__ = "__call__"
        self.__wrapped__ = wsgi

    def __get__(self, obj: t.Any, owner: type | None = None) -> t.Any:
        return self if obj is None else types.MethodType(self, obj)

    def __call__(
        self, app: t.Any, *args: t.Any, scope: t.Any = None, receive: t.Any = None, send: t.Any = None
    ) -> t.Any:
        asgi = asgi_call(args, scope, receive, send)
        return self.wsgi(app, *args) if asgi is None else app.asgi_app(*asgi)


class ServesBoth(type):
    """The metaclass of an app class whose ``__call__`` serves both protocols.

    It notes, as the class's ``wsgi_entry_patched``, whether the WSGI entry was
    replaced at class level: ``__call__`` or ``wsgi_app`` assigned to the class
    or to a base (``sentry_sdk``'s ``FlaskIntegration`` patches
    ``Flask.__call__``, which is this class under ``alias_flask``), or defined
    by a subclass. The ASGI side then serves HTTP through that entry. A
    WSGI-only ``__call__`` becomes a :class:`WSGIOnlyCall`, so that ASGI
    servers can still call the class's instances.
    """

    wsgi_entry_patched: bool

    def __init__(cls, name: str, bases: tuple[type, ...], namespace: dict[str, t.Any], **kwargs: t.Any) -> None:
        super().__init__(name, bases, namespace, **kwargs)
        if not any(isinstance(base, ServesBoth) for base in bases):
            type.__setattr__(cls, "wsgi_entry_patched", False)  # the app class itself
            return
        if "wsgi_app" in namespace:
            type.__setattr__(cls, "wsgi_entry_patched", True)
        if "__call__" in namespace:
            setattr(cls, "__call__", namespace["__call__"])  # through __setattr__ below

    def __setattr__(cls, name: str, value: t.Any) -> None:
        if name == "__call__" and _wsgi_only(value):
            value = WSGIOnlyCall(value)
        if name == "wsgi_app" or isinstance(value, WSGIOnlyCall):
            type.__setattr__(cls, "wsgi_entry_patched", True)
        super().__setattr__(name, value)
