"""``Tether``: the application core served by the protocol adapters, with its
test tools and command line."""

from __future__ import annotations

import asyncio
import functools
import inspect
import typing as t

from .application import Application
from .asgi import serve_http
from .asgi_lifespan import serve_lifespan
from .asgi_websocket import serve_websocket
from .background import Background, Job, PeriodicService, _name
from .broadcast import Broadcast
from .commands import AppGroup
from .steps import run_coroutine
from .testing import TetherClient, TetherCliRunner
from .wsgi import serve as serve_wsgi

__all__ = ["Tether"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


class Tether(Application):
    """A tether application: ``Tether(__name__)``, then routes and hooks, then serve
    it with any WSGI server (``gunicorn module:app``)."""

    test_client_class: type[TetherClient] = TetherClient
    test_cli_runner_class: type[TetherCliRunner] = TetherCliRunner

    def __init__(self, import_name: str, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(import_name, *args, **kwargs)
        self.cli = AppGroup(name=self.name)
        self.background = Background(self)
        self.__dict__["__call__"] = _ProtocolEntry(self)

    def spawn(self, fn: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> Job:
        """Run ``fn(*args, **kwargs)`` in the background and return its :class:`Job`.

        A sync function runs in the ``SPAWN_THREADS`` pool, an async one as a task
        on the serving loop. It runs in an app context of its own; spawned from a
        request, it also sees a copy of that request (``request.args``,
        ``headers``, ``json``, ``form``, ``files``) that stays readable after the
        response is sent. An exception is logged through ``app.logger`` with the
        function's name and sent as the ``spawned_work_failed`` signal.
        """
        return self.background.spawn(fn, args, kwargs)

    def periodic(self, seconds: float, name: str | None = None) -> t.Callable[[F], F]:
        """Run the decorated function (sync or async) every ``seconds`` while the app
        serves, in each worker: each run in a fresh app context, runs never
        overlapping, a failing run logged without stopping the service.
        ``app.periodic_services[name].run_once()`` runs it once by hand."""

        def decorator(f: F) -> F:
            service_name = name or _name(f)
            self.background.services[service_name] = PeriodicService(self, f, seconds, service_name)
            return f

        return decorator

    @property
    def broadcast(self) -> Broadcast:
        """The app's :class:`~tether.broadcast.Broadcast`, from ``BROADCAST_URL``
        (default ``memory://``: fan-out within one worker)."""
        broadcast = self.__dict__.get("_broadcast")
        if broadcast is None:
            broadcast = self.__dict__["_broadcast"] = Broadcast(
                self.config["BROADCAST_URL"],
                maxsize=self.config["BROADCAST_QUEUE_SIZE"],
                overflow=self.config["BROADCAST_OVERFLOW"],
            )
        return broadcast

    @property
    def periodic_services(self) -> dict[str, PeriodicService]:
        return self.background.services

    def _services_started(self, loop: t.Any) -> None:
        if loop is None:
            loop = self.background.loop()
            for service in self.background.services.values():
                loop.call_soon_threadsafe(service.start, loop)
            return
        self.background.serving_loop = loop
        for service in self.background.services.values():
            service.start(loop)

    async def _services_stopping(self) -> None:
        for service in self.background.services.values():
            await service.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.background.shutdown)
        self.background.serving_loop = None

    def _services_stopped_at_exit(self) -> None:
        if self.background.services:
            loop = self.background.loop()
            for service in self.background.services.values():
                asyncio.run_coroutine_threadsafe(service.stop(), loop).result(10)
        self.background.shutdown()

    def wsgi_app(self, environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Iterable[bytes]:
        """The WSGI application; wrap this attribute in middleware to keep ``app`` itself."""
        return serve_wsgi(self, environ, start_response)

    def asgi_app(
        self, scope: dict[str, t.Any], receive: t.Callable[..., t.Any], send: t.Callable[..., t.Any]
    ) -> t.Awaitable[None]:
        """The ASGI 3 application (it returns the awaitable that serves the scope);
        wrap this attribute in ASGI middleware."""
        kind = scope["type"]
        if kind == "http":
            return serve_http(self, scope, receive, send)
        if kind == "websocket":
            return serve_websocket(self, scope, receive, send)
        if kind == "lifespan":
            return serve_lifespan(self, scope, receive, send)
        raise ValueError(f"tether cannot serve ASGI scope type {kind!r}.")

    def __call__(self, *args: t.Any) -> t.Any:
        """WSGI with two arguments (``environ, start_response``), ASGI 3 with three."""
        if len(args) == 2:
            return self.wsgi_app(*args)
        return self.asgi_app(*args)

    def ensure_sync(self, func: F) -> F:
        """``func``, callable from synchronous code: an ``async def`` function runs to
        completion on the current thread's event loop."""
        if not inspect.iscoroutinefunction(func):
            return func

        @functools.wraps(func)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return run_coroutine(func(*args, **kwargs))

        return t.cast(F, wrapper)

    def test_client(self, use_cookies: bool = True, **kwargs: t.Any) -> TetherClient:
        """A client that sends requests to the app without a server, as Flask's;
        ``asgi=True`` sends them through the ASGI adapter."""
        return self.test_client_class(self, self.response_class, use_cookies=use_cookies, **kwargs)

    def test_cli_runner(self, **kwargs: t.Any) -> TetherCliRunner:
        return self.test_cli_runner_class(self, **kwargs)

    def run(self, host: str = "127.0.0.1", port: int = 5000, debug: bool | None = None, **options: t.Any) -> None:
        """Serve with Werkzeug's development server; use a production server in production."""
        from werkzeug.serving import run_simple

        if debug is not None:
            self.debug = debug
        options.setdefault("use_reloader", self.debug)
        options.setdefault("use_debugger", self.debug)
        options.setdefault("threaded", True)
        run_simple(host, port, self, **options)


async def _asgi_signature(scope: t.Any, receive: t.Any, send: t.Any) -> None:
    """Lends its code object (a coroutine's) to :class:`_ProtocolEntry`."""


class _ProtocolEntry:
    """``app.__call__`` as read through the instance: how one object is served by
    WSGI and ASGI servers alike, with no flag.

    ASGI servers pick the interface by asking whether ``app.__call__`` is a
    coroutine function (uvicorn: ``asyncio.iscoroutinefunction``, hypercorn:
    ``inspect.iscoroutinefunction``); WSGI servers just call ``app(environ,
    start_response)``, which goes through the class's ``__call__`` and never
    sees this. So this function-like object carries a coroutine's code object,
    which makes both checks say yes, and calling it calls the app.
    """

    def __init__(self, app: Tether) -> None:
        self._app = app
        self.__name__ = self.__qualname__ = "__call__"
        self.__code__ = _asgi_signature.__code__
        self.__defaults__ = None
        self.__kwdefaults__ = None
        self.__annotations__: dict[str, t.Any] = {}
        mark = getattr(inspect, "markcoroutinefunction", None)
        if mark is not None:
            mark(self)

    def __call__(self, *args: t.Any) -> t.Any:
        return type(self._app).__call__(self._app, *args)
