"""``Tether``: the application core served by the protocol adapters, with its
test tools and command line."""

from __future__ import annotations

import functools
import inspect
import typing as t

from .application import Application
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

    def wsgi_app(self, environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Iterable[bytes]:
        """The WSGI application; wrap this attribute in middleware to keep ``app`` itself."""
        return serve_wsgi(self, environ, start_response)

    def __call__(self, environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Iterable[bytes]:
        return self.wsgi_app(environ, start_response)

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
        """A client that sends requests to the app without a server, as Flask's."""
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
