"""``Tether``, the app object users create: the protocol-free application
(``tether.application``) with what serves it (``tether.serving``), its live
features (``tether.live``), its test tools and its command line."""

from __future__ import annotations

import functools
import inspect
import os
import threading
import typing as t

import click
import werkzeug.serving

from .application.blueprints import BlueprintApp, BlueprintBase
from .application.helpers import get_debug_flag, get_load_dotenv
from .application.pipeline import Application
from .application.wrappers import Request
from .cli import environment as cli_environment
from .cli.groups import AppGroup
from .contexts.ctx import RequestContext, _sentinel
from .contexts.steps import run_coroutine
from .live.attendance import Who
from .live.background import Background, Job, qualified_name
from .live.broadcast import Broadcast, check_url
from .live.broadcast.namespace import namespace_for
from .live.channels import ChannelPolicy
from .live.endpoint import live_blueprint
from .live.fanout import warn_if_split
from .live.periodic import PeriodicService
from .live.presence import Presence
from .serving.asgi_http import serve_http
from .serving.entry import DualCall, ServesBoth, install_protocol_entry
from .serving.lifecycle import ServingState
from .serving.lifespan import serve_lifespan
from .serving.websocket import serve_websocket
from .serving.wsgi import serve as serve_wsgi
from .serving.wsgi_chain import PROBE, answer_probe, serve_indirectly
from .testing import EnvironBuilder, TetherClient, TetherCliRunner
from .typing import Receive, Scope, Send, StartResponse, WSGIEnvironment

__all__ = ["Blueprint", "Tether"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
P = t.ParamSpec("P")
R = t.TypeVar("R")


class Tether(Application, DualCall, metaclass=ServesBoth):
    """A tether application: ``Tether(__name__)``, then routes and hooks, then serve
    it with any WSGI server (``gunicorn module:app``) or ASGI server (``uvicorn
    module:app``, daphne, hypercorn)."""

    test_client_class: type[TetherClient] = TetherClient
    test_cli_runner_class: type[TetherCliRunner] = TetherCliRunner

    def __init__(
        self,
        import_name: str,
        static_url_path: str | None = None,
        static_folder: str | os.PathLike[str] | None = "static",
        static_host: str | None = None,
        host_matching: bool = False,
        subdomain_matching: bool = False,
        template_folder: str | os.PathLike[str] | None = "templates",
        instance_path: str | None = None,
        instance_relative_config: bool = False,
        root_path: str | None = None,
    ) -> None:
        super().__init__(
            import_name, static_url_path, static_folder, static_host, host_matching, subdomain_matching,
            template_folder, instance_path, instance_relative_config, root_path,
        )
        self.cli = AppGroup(name=self.name)
        self.serving = ServingState(self)
        self.background = Background(self)
        self.serving.services.append(self.background)
        self.serving.checks.append(_check_live_settings)
        self._broadcast: Broadcast | None = None
        self._presence: Presence | None = None
        self._broadcast_lock = threading.Lock()
        #: Who may follow which channel (``channel``); empty: every channel.
        self.channel_policy = ChannelPolicy()
        self.serving.source_guard = self.channel_policy
        install_protocol_entry(self)

    def spawn(self, fn: t.Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> Job:
        """Run ``fn(*args, **kwargs)`` in the background and return its :class:`~tether.Job`.

        A sync function runs in the ``SPAWN_THREADS`` pool, an async one as a task
        on the serving loop. It runs in an app context of its own; spawned from a
        request, it also sees a copy of that request (``request.args``,
        ``headers``, ``json``, ``form``, ``files``) that stays readable after the
        response is sent. An exception is logged through ``app.logger`` with the
        function's name and sent as the ``spawned_work_failed`` signal.
        """
        return self.background.spawn(fn, args, kwargs)

    def periodic(
        self, seconds: float, name: str | None = None, *, across: t.Literal["worker", "cluster"] = "worker"
    ) -> t.Callable[[F], F]:
        """Run the decorated function (sync or async) every ``seconds`` while the app
        serves: each run in a fresh app context, runs never overlapping, a
        failing run logged without stopping the service. ``across="worker"``
        runs it in each worker; ``across="cluster"`` once per interval across
        every worker and host sharing the ``redis://`` ``BROADCAST_URL``.
        ``app.periodic_services[name].run_once()`` runs it once by hand."""
        if across not in ("worker", "cluster"):
            raise ValueError(f"across must be 'worker' or 'cluster', not {across!r}.")

        def decorator(f: F) -> F:
            service_name = name or qualified_name(f)
            self.background.services[service_name] = PeriodicService(
                self.background, f, seconds, service_name, across=across
            )
            return f

        return decorator

    @property
    def broadcast(self) -> Broadcast:
        """The app's :class:`~tether.live.broadcast.Broadcast`, from ``BROADCAST_URL``
        (default ``memory://``: fan-out within one worker); one per app, made on
        first use."""
        broadcast = self._broadcast
        if broadcast is None:
            with self._broadcast_lock:
                broadcast = self._broadcast
                if broadcast is None:
                    broadcast = self._broadcast = Broadcast(
                        self.config["BROADCAST_URL"],
                        maxsize=self.config["BROADCAST_QUEUE_SIZE"],
                        overflow=self.config["BROADCAST_OVERFLOW"],
                        history=self.config["BROADCAST_HISTORY"],
                        dumps=self.json.dumps,
                        loads=self.json.loads,
                        namespace=namespace_for(self),
                    )
                    warn_if_split(self, self._worker_services())
        return broadcast

    def channel(self, pattern: str) -> t.Callable[[F], F]:
        """Decide who may follow the channels ``pattern`` matches (``"room:<name>"``,
        ``"user:<int:id>"``): the decorated function gets the pattern's values,
        runs in the client's request or WebSocket context, and returns ``True``,
        ``tether.live.channels.LIVE_ONLY`` (no history) or ``False``; it may
        be ``async def`` (awaited on the connection's loop from async code). Once one
        rule exists, a channel that no rule matches is refused; the live
        endpoint, ``EventStream`` and ``websocket.relay`` obey the rules."""

        def decorator(f: F) -> F:
            self.channel_policy.add(pattern, f)
            return f

        return decorator

    def live(self, url_prefix: str = "/live", name: str = "live", *, presence: Who | None = None) -> None:
        """Serve the live endpoint under ``url_prefix``: a WebSocket
        (``url_for("live.socket")``) and an SSE fallback (``"live.events"``)
        where browsers join channels, and the client script that does it
        (``"live.client"``); see ``tether.live.endpoint``.

        ``presence(channel)``, run in the client's context (sync or async, as a
        channel rule) once a join is allowed, says whether and as whom the
        connection is present there: ``(member, meta)`` enters it in
        :attr:`presence` until it leaves or goes, ``None`` does not; the
        ``joined`` event then lists who is there (``tether.live.attendance``)."""
        self.register_blueprint(live_blueprint(name, presence), url_prefix=url_prefix)

    def _worker_services(self) -> list[str]:
        return [name for name, service in self.periodic_services.items() if service.across == "worker"]

    @property
    def presence(self) -> Presence:
        """The app's :class:`~tether.live.presence.Presence` over :attr:`broadcast`:
        who is in each channel, across every worker on Redis (``PRESENCE_TTL``
        bounds how long a dead worker's members stay); one per app, made on
        first use and stopped with the app."""
        presence = self._presence
        if presence is None:
            broadcast = self.broadcast
            with self._broadcast_lock:
                presence = self._presence
                if presence is None:
                    presence = self._presence = Presence(
                        broadcast, ttl=self.config["PRESENCE_TTL"], dumps=self.json.dumps, loads=self.json.loads
                    )
                    self.serving.services.append(presence)
            if self.serving.started:  # made while serving: it reaps from now on
                presence.start()
        return presence

    @property
    def periodic_services(self) -> dict[str, PeriodicService]:
        """The periodic services by name; ``run_once()`` runs one by hand."""
        return t.cast(dict[str, PeriodicService], self.background.services)

    def wsgi_app(self, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
        """The WSGI application; wrap this attribute in middleware to keep ``app``
        itself. Under ASGI too, HTTP requests then go through the middleware."""
        if PROBE in environ:  # a WebSocket handshake passing through the middleware
            return answer_probe(environ, start_response)
        return serve_wsgi(self.serving, environ, start_response)

    def asgi_app(self, scope: Scope, receive: Receive, send: Send) -> t.Awaitable[None]:
        """The ASGI 3 application (it returns the awaitable that serves the scope);
        wrap this attribute in ASGI middleware.

        Requests take the direct path unless the app has not started (a server
        that sends no lifespan: it starts on the first request) or its WSGI
        entry is wrapped (``app.wsgi_app`` replaced, or the class's ``__call__``
        or ``wsgi_app`` patched): then ``tether.serving.wsgi_chain`` serves
        HTTP through that entry, as a WSGI server would."""
        kind = scope["type"]
        serving = self.serving
        if kind == "http" or kind == "websocket":
            wrapped = type(self).wsgi_entry_patched or "wsgi_app" in self.__dict__
            if wrapped or not serving.started:
                return serve_indirectly(serving, type(self).__call__ if wrapped else None, scope, receive, send)
            if kind == "http":
                return serve_http(serving, scope, receive, send)
            return serve_websocket(serving, scope, receive, send)
        if kind == "lifespan":
            return serve_lifespan(serving, scope, receive, send)
        raise ValueError(f"tether cannot serve ASGI scope type {kind!r}.")

    def ensure_sync(self, func: F) -> F:
        """``func``, callable from synchronous code: an ``async def`` function runs to
        completion on the current thread's event loop."""
        if not inspect.iscoroutinefunction(func):
            return func
        return t.cast(F, self.async_to_sync(func))

    def async_to_sync(self, func: t.Callable[P, t.Coroutine[t.Any, t.Any, R]]) -> t.Callable[P, R]:
        """A synchronous function running ``func`` to completion on the current
        thread's event loop (one loop kept per thread, not one per call)."""

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return run_coroutine(func(*args, **kwargs))

        return wrapper

    def test_request_context(self, *args: t.Any, **kwargs: t.Any) -> RequestContext[Request]:
        """A request context for a request built from ``EnvironBuilder`` arguments."""
        builder = EnvironBuilder(self, *args, **kwargs)
        try:
            return self.request_context(builder.get_environ())
        finally:
            builder.close()

    def test_client(self, use_cookies: bool = True, **kwargs: t.Any) -> TetherClient:
        """A client that sends requests to the app without a server, as Flask's;
        ``asgi=True`` sends them through the ASGI adapter."""
        return self.test_client_class(self, self.response_class, use_cookies=use_cookies, **kwargs)

    def test_cli_runner(self, **kwargs: t.Any) -> TetherCliRunner:
        return self.test_cli_runner_class(self, **kwargs)

    def run(
        self,
        host: str | None = None,
        port: int | None = None,
        debug: bool | None = None,
        load_dotenv: bool = True,
        **options: t.Any,
    ) -> None:
        """Serve with Werkzeug's development server over WSGI, as Flask's ``app.run``
        (``options`` go to Werkzeug's ``run_simple``): the host and port default to
        ``SERVER_NAME``'s, then ``127.0.0.1:5000``. Unlike ``tether run`` (uvicorn),
        it serves no WebSockets: kept Werkzeug's so that code written for Flask's
        runs unchanged (docs/serving.md). Use a production server (``gunicorn``,
        ``uvicorn``) in production."""
        if os.environ.get("FLASK_RUN_FROM_CLI") == "true":
            if not werkzeug.serving.is_running_from_reloader():
                click.secho(
                    " * Ignoring a call to 'app.run()' that would block the current command.\n"
                    "   Only call 'app.run()' in an 'if __name__ == \"__main__\"' guard.",
                    fg="red",
                )
            return
        if get_load_dotenv(load_dotenv):
            cli_environment.load_dotenv()
            if "FLASK_DEBUG" in os.environ or "TETHER_DEBUG" in os.environ:
                self.debug = get_debug_flag()
        if debug is not None:
            self.debug = bool(debug)
        sn_host, _, sn_port = (self.config.get("SERVER_NAME") or "").partition(":")
        host = host or sn_host or "127.0.0.1"
        port = int(port) if port or port == 0 else int(sn_port) if sn_port else 5000
        options.setdefault("use_reloader", self.debug)
        options.setdefault("use_debugger", self.debug)
        options.setdefault("threaded", True)
        cli_environment.show_server_banner(self.debug, self.name)
        if not options["use_reloader"] or werkzeug.serving.is_running_from_reloader():
            # As under `tether run --wsgi`: checked and started before the server listens,
            # not at the first request (the reloader's parent process only watches files).
            self.serving.start_wsgi()
        # Looked up at call time, as Flask does: tests replace it.
        werkzeug.serving.run_simple(host, port, self, **options)


def _check_live_settings(app: Application) -> None:
    """At startup (``ServingState.checks``): a ``BROADCAST_URL`` no backend
    serves, redis-py missing for a Redis one, or a cluster service without
    Redis stops the server with its fix; a ``memory://`` broadcast under
    several workers is warned about, if the app has live features by then
    (periodic services, or its broadcast made; else when it is made)."""
    served = t.cast(Tether, app)
    for service in served.periodic_services.values():
        service.check()
    check_url(served.config["BROADCAST_URL"])
    if served.periodic_services or served._broadcast is not None:
        warn_if_split(served, served._worker_services())


class Blueprint(BlueprintBase):
    """A blueprint with its own commands, ``bp.cli``: on registration they become
    the app's command group named ``cli_group`` (the blueprint's name unless
    given), or join the app's own commands when ``cli_group`` is ``None``."""

    def __init__(
        self,
        name: str,
        import_name: str,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str | None = None,
        template_folder: str | os.PathLike[str] | None = None,
        url_prefix: str | None = None,
        subdomain: str | None = None,
        url_defaults: dict[str, t.Any] | None = None,
        root_path: str | None = None,
        cli_group: str | None = _sentinel,
    ) -> None:
        super().__init__(
            name, import_name, static_folder, static_url_path, template_folder, url_prefix, subdomain, url_defaults,
            root_path, cli_group,
        )
        self.cli = AppGroup()

    def register(self, app: BlueprintApp, options: dict[str, t.Any]) -> None:
        super().register(app, options)
        if not self.cli.commands:
            return
        app_cli = t.cast(Tether, app).cli
        group = options.get("cli_group", self.cli_group)
        if group is None:
            app_cli.commands.update(self.cli.commands)
            return
        name = f"{options.get('name_prefix', '')}.{options.get('name', self.name)}".lstrip(".")
        self.cli.name = name if group is _sentinel else group
        app_cli.add_command(self.cli)
