"""The application core: config, routing, hooks, error handling and building
responses. It is sans-IO: adapters build a ``RequestContext`` from their
protocol and send the ``Response`` that :meth:`Application.handle` returns."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import logging
import os
import sys
import threading
import typing as t
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from itertools import chain
from types import CoroutineType

from werkzeug.datastructures import Headers, ImmutableDict
from werkzeug.exceptions import (
    Aborter,
    BadRequest,
    BadRequestKeyError,
    HTTPException,
    InternalServerError,
)
from werkzeug.routing import BuildError, Map, MapAdapter, RoutingException, Rule, WebsocketMismatch
from werkzeug.urls import quote as _url_quote
from werkzeug.utils import redirect as _redirect
from werkzeug.wrappers import Response as WerkzeugResponse

from .blueprints import Blueprint
from .config import Config, ConfigAttribute
from .ctx import AppContext, RequestContext, _AppCtxGlobals
from .globals import _cv_app, _cv_request
from .json.provider import DefaultJSONProvider, JSONProvider
from .routing import FastRouter
from .scaffold import Scaffold, _endpoint_from_view_func
from .sessions import SecureCookieSessionInterface, SessionInterface, SessionMixin
from .signals import (
    appcontext_tearing_down,
    got_request_exception,
    request_finished,
    request_started,
    request_tearing_down,
)
from .steps import NO_KWARGS, Steps, run, run_async
from .templating import Environment, _default_template_ctx_processor
from .wrappers import Request, Response

__all__ = ["Application"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

DEFAULT_CONFIG: dict[str, t.Any] = {
    "DEBUG": None,
    "TESTING": False,
    "PROPAGATE_EXCEPTIONS": None,
    "SECRET_KEY": None,
    "SECRET_KEY_FALLBACKS": [],
    "PERMANENT_SESSION_LIFETIME": timedelta(days=31),
    "USE_X_SENDFILE": False,
    "TRUSTED_HOSTS": None,
    "SERVER_NAME": None,
    "APPLICATION_ROOT": "/",
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_DOMAIN": None,
    "SESSION_COOKIE_PATH": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_PARTITIONED": False,
    "SESSION_COOKIE_SAMESITE": None,
    "SESSION_REFRESH_EACH_REQUEST": True,
    "MAX_CONTENT_LENGTH": None,
    "MAX_FORM_MEMORY_SIZE": 500_000,
    "MAX_FORM_PARTS": 1_000,
    "SEND_FILE_MAX_AGE_DEFAULT": None,
    "TRAP_BAD_REQUEST_ERRORS": None,
    "TRAP_HTTP_EXCEPTIONS": False,
    "EXPLAIN_TEMPLATE_LOADING": False,
    "PREFERRED_URL_SCHEME": "http",
    "TEMPLATES_AUTO_RELOAD": None,
    "MAX_COOKIE_SIZE": 4093,
    "PROVIDE_AUTOMATIC_OPTIONS": True,
    "SYNC_THREADS": 40,
    "SPAWN_THREADS": 8,
    "SPAWN_GRACE_PERIOD": 10.0,
    "FORWARD_MAX_DEPTH": 8,
    "BROADCAST_URL": "memory://",
    "BROADCAST_QUEUE_SIZE": 100,
    "BROADCAST_OVERFLOW": "drop-oldest",
    "SSE_KEEPALIVE_INTERVAL": 15.0,
    "SSE_SEND_TIMEOUT": 30.0,
    "WEBSOCKET_ALLOWED_ORIGINS": None,
}


def _call_all(funcs: t.Iterable[t.Callable[..., t.Any]], arg: t.Any, logger: logging.Logger, what: str) -> Steps[None]:
    """Call every function even if some raise; log each error and re-raise the
    first once all have run, so one broken teardown cannot skip the others."""
    first: Exception | None = None
    for func in funcs:
        try:
            yield func, (arg,), NO_KWARGS
        except Exception as e:
            logger.exception("Error in %s function %r", what, func)
            if first is None:
                first = e
    if first is not None:
        raise first


class Application(Scaffold):
    """A web application, independent of the protocol that serves it."""

    request_class: type[Request] = Request
    response_class: type[Response] = Response
    aborter_class = Aborter
    jinja_environment = Environment
    app_ctx_globals_class = _AppCtxGlobals
    config_class = Config
    url_rule_class = Rule
    url_map_class = Map
    json_provider_class: type[JSONProvider] = DefaultJSONProvider
    session_interface: SessionInterface = SecureCookieSessionInterface()
    default_config = ImmutableDict(DEFAULT_CONFIG)
    jinja_options: dict[str, t.Any] = {}

    testing = ConfigAttribute[bool]("TESTING")
    secret_key = ConfigAttribute[t.Union[str, bytes, None]]("SECRET_KEY")
    permanent_session_lifetime = ConfigAttribute[timedelta](
        "PERMANENT_SESSION_LIFETIME",
        get_converter=lambda v: v if isinstance(v, timedelta) else timedelta(seconds=v),
    )

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
        super().__init__(import_name, static_folder, static_url_path, template_folder, root_path)
        self.instance_path = instance_path or os.path.join(os.path.dirname(self.root_path), "instance")
        self.config = self.config_class(
            self.instance_path if instance_relative_config else self.root_path, dict(self.default_config)
        )
        self.aborter = self.aborter_class()
        self.json: JSONProvider = self.json_provider_class(self)
        self.url_build_error_handlers: list[t.Callable[[Exception, str, dict[str, t.Any]], str]] = []
        self.teardown_appcontext_funcs: list[t.Callable[[BaseException | None], None]] = []
        self.shell_context_processors: list[t.Callable[[], dict[str, t.Any]]] = []
        self.before_serving_funcs: list[t.Callable[[], t.Any]] = []
        self.after_serving_funcs: list[t.Callable[[], t.Any]] = []
        self._serving_lock = threading.Lock()
        self._serving = False
        self.blueprints: dict[str, Blueprint] = {}
        self.extensions: dict[str, t.Any] = {}
        self.url_map = self.url_map_class(host_matching=host_matching)
        self.subdomain_matching = subdomain_matching
        self._router: FastRouter | None = None
        #: Whether each view function is async, asked once per function.
        self._async_views: dict[t.Callable[..., t.Any], bool] = {}
        self.template_context_processors[None].append(_default_template_ctx_processor)
        if self.has_static_folder:
            assert bool(static_host) == host_matching, "Invalid static_host/host_matching combination"
            self.add_url_rule(
                f"{self.static_url_path}/<path:filename>",
                endpoint="static",
                host=static_host,
                view_func=lambda **kw: self.send_static_file(**kw),
            )

    # Properties

    @property
    def name(self) -> str:  # type: ignore[override]
        """The import name, or the script's name when run as ``__main__``."""
        if self.import_name == "__main__":
            fn = getattr(sys.modules["__main__"], "__file__", None)
            if fn is None:
                return "__main__"
            return os.path.splitext(os.path.basename(fn))[0]
        return self.import_name

    @property
    def logger(self) -> logging.Logger:
        """The logger named after the app; errors of requests and teardowns go here."""
        logger = self.__dict__.get("_logger")
        if logger is None:
            logger = self.__dict__["_logger"] = logging.getLogger(self.name)
            if self.debug and not logger.level:
                logger.setLevel(logging.DEBUG)
            if not logging.getLogger().handlers and not logger.handlers:
                handler = logging.StreamHandler()
                handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s"))
                logger.addHandler(handler)
        return logger

    @property
    def debug(self) -> bool:
        return bool(self.config["DEBUG"])

    @debug.setter
    def debug(self, value: bool) -> None:
        self.config["DEBUG"] = value
        if self.config["TEMPLATES_AUTO_RELOAD"] is None and "jinja_env" in self.__dict__:
            self.jinja_env.auto_reload = value

    @property
    def propagate_exceptions(self) -> bool:
        rv = self.config["PROPAGATE_EXCEPTIONS"]
        return rv if rv is not None else bool(self.testing or self.debug)

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The bounded thread pool (``SYNC_THREADS`` workers) where sync views,
        sync WebSocket handlers and sync event sources run under ASGI."""
        pool = self.__dict__.get("_executor")
        if pool is None:
            with self._serving_lock:
                pool = self.__dict__.get("_executor")
                if pool is None:
                    pool = self.__dict__["_executor"] = ThreadPoolExecutor(
                        max_workers=self.config["SYNC_THREADS"], thread_name_prefix="tether-sync"
                    )
        return pool

    @property
    def jinja_env(self) -> Environment:
        env = self.__dict__.get("jinja_env")
        if env is None:
            env = self.__dict__["jinja_env"] = self.create_jinja_environment()
        return env

    def create_jinja_environment(self) -> Environment:
        options = dict(self.jinja_options)
        options.setdefault("autoescape", lambda name: name is None or name.endswith((".html", ".htm", ".xml", ".xhtml", ".svg")))
        auto_reload = self.config["TEMPLATES_AUTO_RELOAD"]
        options.setdefault("auto_reload", self.debug if auto_reload is None else auto_reload)
        env = self.jinja_environment(self, **options)
        from .helpers import get_flashed_messages, url_for

        env.globals.update(url_for=url_for, get_flashed_messages=get_flashed_messages, config=self.config)
        env.policies["json.dumps_function"] = self.json.dumps
        return env

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        value = self.config["SEND_FILE_MAX_AGE_DEFAULT"]
        if value is None or isinstance(value, int):
            return value
        return int(value.total_seconds())

    # Contexts

    def app_context(self) -> AppContext:
        """A context in which ``current_app`` and ``g`` work: ``with app.app_context():``."""
        return AppContext(self)

    def request_context(self, environ: dict[str, t.Any]) -> RequestContext:
        return RequestContext(self, environ)

    def test_request_context(self, *args: t.Any, **kwargs: t.Any) -> RequestContext:
        """A request context for a request built from ``EnvironBuilder`` arguments."""
        from .testing import EnvironBuilder

        builder = EnvironBuilder(self, *args, **kwargs)
        try:
            return self.request_context(builder.get_environ())
        finally:
            builder.close()

    # Registration

    def iter_blueprints(self) -> t.ValuesView[Blueprint]:
        return self.blueprints.values()

    def register_blueprint(self, blueprint: Blueprint, **options: t.Any) -> None:
        blueprint.register(self, options)
        self._router = None

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: t.Callable[..., t.Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: t.Any,
    ) -> None:
        if endpoint is None:
            endpoint = _endpoint_from_view_func(view_func)  # type: ignore[arg-type]
        options["endpoint"] = endpoint
        methods = options.pop("methods", None)
        if methods is None:
            methods = getattr(view_func, "methods", None) or ("GET",)
        if isinstance(methods, str):
            raise TypeError("Allowed methods must be a list of strings, for example: @app.route(..., methods=['POST'])")
        methods = {item.upper() for item in methods}
        methods |= set(getattr(view_func, "required_methods", ()))
        if provide_automatic_options is None:
            provide_automatic_options = getattr(view_func, "provide_automatic_options", None)
        if provide_automatic_options is None:
            provide_automatic_options = "OPTIONS" not in methods and self.config["PROVIDE_AUTOMATIC_OPTIONS"]
        if provide_automatic_options:
            methods.add("OPTIONS")
        rule_obj = self.url_rule_class(rule, methods=methods, **options)
        rule_obj.provide_automatic_options = provide_automatic_options  # type: ignore[attr-defined]
        self.url_map.add(rule_obj)
        self._router = None
        if view_func is not None:
            old = self.view_functions.get(endpoint)
            if old is not None and old != view_func:
                raise AssertionError(
                    f"View function mapping is overwriting an existing endpoint function: {endpoint}"
                )
            self.view_functions[endpoint] = view_func

    def teardown_appcontext(self, f: F) -> F:
        """Run ``f(exc)`` when an app context is popped (after each request, script block, ...)."""
        self.teardown_appcontext_funcs.append(f)
        return f

    def before_serving(self, f: F) -> F:
        """Run ``f()`` (sync or async) once per worker, in an app context, when it
        starts serving: at ASGI lifespan startup, or under WSGI before the first
        request. If it raises, the worker does not serve."""
        self.before_serving_funcs.append(f)
        return f

    def after_serving(self, f: F) -> F:
        """Run ``f()`` once per worker, in an app context, when it stops serving: at
        ASGI lifespan shutdown, or under WSGI when the process exits."""
        self.after_serving_funcs.append(f)
        return f

    def shell_context_processor(self, f: F) -> F:
        self.shell_context_processors.append(f)
        return f

    def template_filter(self, name: str | None = None) -> t.Callable[[F], F]:
        def decorator(f: F) -> F:
            self.add_template_filter(f, name=name)
            return f

        return decorator

    def add_template_filter(self, f: t.Callable[..., t.Any], name: str | None = None) -> None:
        self.jinja_env.filters[name or f.__name__] = f

    def template_global(self, name: str | None = None) -> t.Callable[[F], F]:
        def decorator(f: F) -> F:
            self.add_template_global(f, name=name)
            return f

        return decorator

    def add_template_global(self, f: t.Callable[..., t.Any], name: str | None = None) -> None:
        self.jinja_env.globals[name or f.__name__] = f

    def template_test(self, name: str | None = None) -> t.Callable[[F], F]:
        def decorator(f: F) -> F:
            self.jinja_env.tests[name or f.__name__] = f
            return f

        return decorator

    def update_template_context(self, context: dict[str, t.Any]) -> None:
        names: t.Iterable[str | None] = (None,)
        request_ctx = _cv_request.get(None)
        if request_ctx is not None:
            names = chain(names, reversed(request_ctx.request.blueprints))
        orig = context.copy()
        for name in names:
            for func in self.template_context_processors.get(name, ()):
                context.update(func())
        context.update(orig)

    def make_shell_context(self) -> dict[str, t.Any]:
        rv: dict[str, t.Any] = {"app": self, "g": _cv_app.get().g if _cv_app.get(None) else None}
        for processor in self.shell_context_processors:
            rv.update(processor())
        return rv

    # Routing

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """A Werkzeug adapter for matching and building URLs, bound to the request
        (or, outside one, to ``SERVER_NAME``)."""
        if request is not None:
            subdomain = None
            server_name = self.config["SERVER_NAME"]
            if self.url_map.host_matching:
                server_name = None
            elif not self.subdomain_matching:
                subdomain = self.url_map.default_subdomain or ""
                server_name = None
            return self.url_map.bind(
                server_name or request.host,
                script_name=request.root_path or "/",
                subdomain=subdomain,
                url_scheme=request.scheme,
                default_method=request.method,
                path_info=request.path,
                query_args=request.query_string.decode("latin-1"),
            )
        if self.config["SERVER_NAME"] is not None:
            return self.url_map.bind(
                self.config["SERVER_NAME"],
                script_name=self.config["APPLICATION_ROOT"],
                url_scheme=self.config["PREFERRED_URL_SCHEME"],
            )
        return None

    def match_request(self, request: Request) -> tuple[Rule, dict[str, t.Any]]:
        """The rule and view arguments for the request; raises the routing
        ``HTTPException`` (404, 405, redirect) when there is none."""
        config = self.config
        trusted = config["TRUSTED_HOSTS"]
        if trusted is not None:
            request.trusted_hosts = trusted
            request.host  # noqa: B018 - raises SecurityError (400) for an untrusted host
        if request.is_websocket:
            return self.create_url_adapter(request).match(return_rule=True, websocket=True)  # type: ignore[union-attr,return-value]
        router = self._router
        if router is None:
            router = self._router = FastRouter(self.url_map)
        if config["SERVER_NAME"] is None or not self.subdomain_matching:
            found = router.match(request.path, request.method)
            if found is not None:
                return found
        try:
            return self.create_url_adapter(request).match(return_rule=True)  # type: ignore[union-attr,return-value]
        except WebsocketMismatch:
            if request.is_asgi:
                fix = "Connect with a WebSocket client (ws:// or wss://)."
            else:
                fix = (
                    "WebSockets need an ASGI server: serve the app with uvicorn or hypercorn "
                    "('uvicorn module:app', or 'tether run'), not a WSGI server."
                )
            raise BadRequest(f"{request.path} is a WebSocket endpoint. {fix}") from None

    def url_for(
        self,
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: t.Any,
    ) -> str:
        """The URL of ``endpoint``; relative in a request, external outside one
        (which needs ``SERVER_NAME``). ``.name`` is relative to the current blueprint."""
        req_ctx = _cv_request.get(None)
        if req_ctx is not None:
            url_adapter = req_ctx.url_adapter
            blueprint_name = req_ctx.request.blueprint
            if endpoint[:1] == ".":
                endpoint = f"{blueprint_name}{endpoint}" if blueprint_name is not None else endpoint[1:]
            if _external is None:
                _external = _scheme is not None
        else:
            app_ctx = _cv_app.get(None)
            url_adapter = app_ctx.url_adapter if app_ctx is not None else self.create_url_adapter(None)
            if url_adapter is None:
                raise RuntimeError(
                    "Unable to build URLs outside an active request without 'SERVER_NAME' "
                    "configured. Also configure 'APPLICATION_ROOT' and 'PREFERRED_URL_SCHEME' "
                    "as needed, or build the URL inside `with app.test_request_context():`."
                )
            if _external is None:
                _external = True
        if _scheme is not None and not _external:
            raise ValueError("When specifying '_scheme', '_external' must be True.")
        self.inject_url_defaults(endpoint, values)
        try:
            rv = url_adapter.build(endpoint, values, method=_method, url_scheme=_scheme, force_external=_external)
        except BuildError as error:
            values.update(_anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external)
            return self.handle_url_build_error(error, endpoint, values)
        if _anchor is not None:
            rv = f"{rv}#{_url_quote(_anchor, safe='%!#$&()*+,/:;=?@')}"
        return rv

    def inject_url_defaults(self, endpoint: str, values: dict[str, t.Any]) -> None:
        names: t.Iterable[str | None] = (None,)
        if "." in endpoint:
            parts = endpoint.split(".")[:-1]
            names = chain(names, (".".join(parts[:i]) for i in range(1, len(parts) + 1)))
        for name in names:
            for func in self.url_default_functions.get(name, ()):
                func(endpoint, values)

    def handle_url_build_error(self, error: BuildError, endpoint: str, values: dict[str, t.Any]) -> str:
        for handler in self.url_build_error_handlers:
            try:
                rv = handler(error, endpoint, values)
            except BuildError as e:
                error = e
            else:
                if rv is not None:
                    return rv
        if error is sys.exc_info()[1]:
            raise
        raise error

    def redirect(self, location: str, code: int = 302) -> Response:
        return _redirect(location, code=code, Response=self.response_class)  # type: ignore[return-value]

    # Serving lifecycle

    async def startup(self) -> None:
        """Run the ``before_serving`` functions (ASGI lifespan startup), then start
        the services that run while the app serves."""
        await self._run_serving(self.before_serving_funcs)
        self._serving = True
        self._services_started(asyncio.get_running_loop())

    async def shutdown(self) -> None:
        """Stop the services, then run the ``after_serving`` functions (ASGI
        lifespan shutdown)."""
        self._serving = False
        await self._services_stopping()
        await self._run_serving(self.after_serving_funcs)

    def _services_started(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Start what runs while the app serves, on ``loop`` (``None`` under WSGI)."""

    async def _services_stopping(self) -> None:
        """Stop what :meth:`_services_started` started."""

    def _services_stopped_at_exit(self) -> None:
        """Under WSGI, at interpreter exit: stop what :meth:`_services_started` started."""

    async def _run_serving(self, funcs: list[t.Callable[[], t.Any]]) -> None:
        if not funcs:
            return
        ctx = self.app_context()
        ctx.push()
        try:
            await run_async(_call_each(funcs))
        finally:
            await ctx.pop_async()

    def start_serving(self) -> None:
        """Under WSGI: run the ``before_serving`` functions once, before the first
        request, and the ``after_serving`` ones at interpreter exit."""
        with self._serving_lock:
            if self._serving:
                return
            if self.before_serving_funcs:
                with self.app_context():
                    run(_call_each(self.before_serving_funcs))
            self._serving = True
            self._services_started(None)
            atexit.register(self._stop_serving_at_exit)

    def _stop_serving_at_exit(self) -> None:
        self._services_stopped_at_exit()
        if self.after_serving_funcs:
            with self.app_context():
                run(_call_each(self.after_serving_funcs))

    # Request handling: the pipeline is written once as steps (see tether.steps)
    # and driven synchronously (WSGI, sync views under ASGI) or on the event loop.

    def handle(self, ctx: RequestContext) -> tuple[Response, t.Callable[[BaseException | None], None] | None]:
        """Answer the request of ``ctx`` synchronously.

        Returns the response and ``None`` once the context is popped; or, for a
        streamed body, the response with the context still pushed and a
        ``finish(error)`` that closes the body and pops the context. The adapter
        produces the body and calls ``finish`` in the contextvars Context this
        ran in, so the body sees ``request`` and ``g`` and teardown runs after it.
        """
        error: Exception | None = None
        ctx.push()
        try:
            try:
                response = run(self._dispatch_steps(ctx))
            except Exception as e:
                error = e
                response = run(self._handle_exception_steps(e, ctx))
        except BaseException as e:
            ctx.pop(e)
            raise
        error = self._settle(ctx, error)
        if type(response.response) is not list and response.is_streamed:
            return response, lambda body_error: self._finish_stream(ctx, response, body_error or error)
        ctx.pop(error)
        return response, None

    async def handle_async(
        self, ctx: RequestContext
    ) -> tuple[Response, t.Callable[[BaseException | None], t.Awaitable[None]] | None]:
        """:meth:`handle` on the event loop, for a request whose view is async."""
        error: Exception | None = None
        ctx.push()
        try:
            try:
                if self._hookless(ctx):
                    response = await self._call_view_alone(ctx)
                else:
                    response = await run_async(self._dispatch_steps(ctx))
            except Exception as e:
                error = e
                response = await run_async(self._handle_exception_steps(e, ctx))
        except BaseException as e:
            await ctx.pop_async(e)
            raise
        error = self._settle(ctx, error)
        if type(response.response) is not list and response.is_streamed:
            return response, lambda body_error: self._finish_stream_async(ctx, response, body_error or error)
        if self.teardown_request_funcs or self.teardown_appcontext_funcs:
            await ctx.pop_async(error)
        else:
            ctx.pop(error)  # the same, with no teardown function to await
        return response, None

    def _hookless(self, ctx: RequestContext) -> bool:
        """Whether nothing but the view runs for this request: no hook, no
        ``after_this_request``, no signal receiver, a matched rule."""
        request = ctx.request
        return not (
            self.url_value_preprocessors
            or self.before_request_funcs
            or self.after_request_funcs
            or ctx._after_request_functions
            or request_started.receivers
            or request.routing_exception is not None
            or request.method == "OPTIONS"
        )

    async def _call_view_alone(self, ctx: RequestContext) -> Response:
        """The pipeline of :meth:`_dispatch_steps` when :meth:`_hookless`: the view,
        then the response (its errors go to the handlers as usual). It skips the
        step machinery, a fifth of a plain async request (bench/asgi_bench.py)."""
        request = ctx.request
        try:
            rv = self.view_functions[request.url_rule.endpoint](**request.view_args)  # type: ignore[union-attr,arg-type]
            if type(rv) is CoroutineType:
                rv = await rv
        except Exception as e:
            rv = await run_async(self._handle_user_exception_steps(e, ctx))
            return await run_async(self._finalize_steps(rv, ctx))
        response = self.make_response(rv)
        if ctx._after_request_functions:  # registered by the view itself
            response = await run_async(self._after_request_steps(response, ctx))
        self._complete(response, ctx)
        return response

    def _settle(self, ctx: RequestContext, error: Exception | None) -> Exception | None:
        request = ctx.request
        preserve = None
        if request._extra_environ is not None or "environ" in request.__dict__:
            preserve = request._environ_value("werkzeug.debug.preserve_context")
        if preserve is not None:
            preserve(_cv_app.get())
            preserve(ctx.copy())
        if error is not None and self.should_ignore_error(error):
            return None
        return error

    def _finish_stream(self, ctx: RequestContext, response: Response, error: BaseException | None) -> None:
        try:
            response.close()
        finally:
            ctx.pop(error)

    async def _finish_stream_async(self, ctx: RequestContext, response: Response, error: BaseException | None) -> None:
        try:
            aclose = getattr(response.response, "aclose", None)
            if aclose is not None:
                await aclose()
            response.close()
        finally:
            await ctx.pop_async(error)

    def should_ignore_error(self, error: BaseException | None) -> bool:
        """Return ``True`` to hide ``error`` from teardown functions."""
        return False

    def async_view(self, request: Request) -> t.Callable[..., t.Any] | None:
        """The view that will answer ``request``, if it is a coroutine function."""
        request.route_pending()
        rule = request.url_rule
        if rule is None or request.routing_exception is not None:
            return None
        view = self.view_functions.get(rule.endpoint)
        if view is None:
            return None
        known = self._async_views.get(view)
        if known is None:
            known = self._async_views[view] = _is_coroutine_function(view)
        return view if known else None

    def _dispatch_steps(self, ctx: RequestContext) -> Steps[Response]:
        ctx.request.route_pending()
        try:
            if request_started.receivers:
                request_started.send(self)
            rv = None
            if self.url_value_preprocessors or self.before_request_funcs:
                rv = yield from self._preprocess_steps(ctx)
            if rv is None:
                request = ctx.request
                if request.routing_exception is not None:
                    self.raise_routing_exception(request)
                rule = request.url_rule
                if request.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
                    rv = self.make_default_options_response(ctx)
                else:
                    rv = yield self.view_functions[rule.endpoint], (), request.view_args  # type: ignore[union-attr]
        except Exception as e:
            rv = yield from self._handle_user_exception_steps(e, ctx)
            return (yield from self._finalize_steps(rv, ctx))
        response = self.make_response(rv)
        if ctx._after_request_functions or self.after_request_funcs:
            response = yield from self._after_request_steps(response, ctx)
        self._complete(response, ctx)
        return response

    def _preprocess_steps(self, ctx: RequestContext) -> Steps[t.Any]:
        request = ctx.request
        if request.url_rule is None or "." not in request.url_rule.endpoint:
            names: t.Iterable[str | None] = (None,)
        else:
            names = (None, *reversed(request.blueprints))
        for name in names:
            for url_func in self.url_value_preprocessors.get(name, ()):
                yield url_func, (request.endpoint, request.view_args), NO_KWARGS
        for name in names:
            for before_func in self.before_request_funcs.get(name, ()):
                rv = yield before_func, (), NO_KWARGS
                if rv is not None:
                    return rv
        return None

    def _view_steps(self, ctx: RequestContext) -> Steps[t.Any]:
        """The view alone (``dispatch_request``); the pipeline inlines the same."""
        request = ctx.request
        if request.routing_exception is not None:
            self.raise_routing_exception(request)
        rule = request.url_rule
        if request.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
            return self.make_default_options_response(ctx)
        return (yield self.view_functions[rule.endpoint], (), request.view_args)  # type: ignore[union-attr]

    def _finalize_steps(self, rv: t.Any, ctx: RequestContext, from_error_handler: bool = False) -> Steps[Response]:
        response = self.make_response(rv)
        try:
            if ctx._after_request_functions or self.after_request_funcs:
                response = yield from self._after_request_steps(response, ctx)
            self._complete(response, ctx)
        except Exception:
            if not from_error_handler:
                raise
            self.logger.exception("Request finalizing failed with an error while handling an error")
        return response

    def _after_request_steps(self, response: Response, ctx: RequestContext) -> Steps[Response]:
        for func in ctx._after_request_functions:
            response = yield func, (response,), NO_KWARGS
        for name in chain(ctx.request.blueprints, (None,)):
            for func in reversed(self.after_request_funcs.get(name, ())):
                response = yield func, (response,), NO_KWARGS
        return response

    def _complete(self, response: Response, ctx: RequestContext) -> None:
        """Save the session and announce the finished response."""
        if ctx._session is None and not ctx.request._sends_cookies():
            # _save_session's own first exit, taken here to spare every request
            # without a session a call (measurable on ASGI '/', bench/asgi_bench.py)
            ctx.headers_sent = True
        else:
            self._save_session(response, ctx)
        if request_finished.receivers:
            request_finished.send(self, response=response)

    def _save_session(self, response: Response, ctx: RequestContext) -> None:
        """Save the session into the response; after this its cookie is final."""
        session = ctx._session
        # A request that sent cookies may carry a permanent session to refresh, as
        # in Flask; one that sent none never opens the session.
        if session is None:
            if not ctx.request._sends_cookies() or not self.config["SESSION_REFRESH_EACH_REQUEST"]:
                ctx.headers_sent = True
                return
            session = ctx.session
        if session is not None and not self.session_interface.is_null_session(session):
            self.session_interface.save_session(self, session, response)
        ctx.headers_sent = True
        if session is not None:
            seal = getattr(session, "seal", None)
            if seal is not None:
                seal(
                    f"The session of {ctx.request.method} {ctx.request.path} was changed after "
                    "its response headers were sent, so the change could not be saved. Change "
                    "the session in the view (or a before/after_request hook), before the "
                    "streamed body starts."
                )

    def _handle_user_exception_steps(self, e: Exception, ctx: RequestContext) -> Steps[t.Any]:
        if isinstance(e, BadRequestKeyError) and (self.debug or self.config["TRAP_BAD_REQUEST_ERRORS"]):
            e.show_exception = True
        if isinstance(e, HTTPException) and not self.trap_http_exception(e):
            if e.code is None or isinstance(e, RoutingException):
                return e
            handler = self._find_error_handler(e, ctx.request.blueprints)
            return e if handler is None else (yield handler, (e,), NO_KWARGS)
        handler = self._find_error_handler(e, ctx.request.blueprints)
        if handler is None:
            raise e
        return (yield handler, (e,), NO_KWARGS)

    def _handle_exception_steps(self, e: Exception, ctx: RequestContext) -> Steps[Response]:
        exc_info = sys.exc_info()
        if got_request_exception.receivers:
            got_request_exception.send(self, exception=e)
        if self.propagate_exceptions:
            if exc_info[1] is e:
                raise
            raise e
        self.log_exception(exc_info)
        server_error: t.Any = InternalServerError(original_exception=e)
        handler = self._find_error_handler(server_error, ctx.request.blueprints)
        if handler is not None:
            server_error = yield handler, (server_error,), NO_KWARGS
        return (yield from self._finalize_steps(server_error, ctx, from_error_handler=True))

    def _websocket_steps(self, ctx: RequestContext) -> Steps[t.Any]:
        """The WebSocket pipeline: ``before_websocket`` functions, the handler,
        ``after_websocket`` functions. A value returned before the handler ran, or
        by a handler that never accepted, is the HTTP response that rejects it."""
        request = ctx.request
        if request.routing_exception is not None:
            self.raise_routing_exception(request)
        names = (None, *reversed(request.blueprints))
        for name in names:
            for before in self.before_websocket_funcs.get(name, ()):
                rv = yield before, (), NO_KWARGS
                if rv is not None:
                    return rv
        rv = yield self.view_functions[request.url_rule.endpoint], (), request.view_args  # type: ignore[union-attr]
        for name in (*request.blueprints, None):
            for after in reversed(self.after_websocket_funcs.get(name, ())):
                yield after, (), NO_KWARGS
        return rv

    # Flask's synchronous API over the same steps

    def full_dispatch_request(self) -> Response:
        """Run the before hooks, the view and the after hooks of the current request."""
        return run(self._dispatch_steps(_cv_request.get()))

    def preprocess_request(self) -> t.Any:
        """Run URL value preprocessors and ``before_request`` functions; the first
        non-``None`` return value stops the request and becomes the response."""
        return run(self._preprocess_steps(_cv_request.get()))

    def dispatch_request(self) -> t.Any:
        """Call the view of the matched rule with the URL's arguments."""
        return run(self._view_steps(_cv_request.get()))

    def finalize_request(self, rv: t.Any, from_error_handler: bool = False) -> Response:
        return run(self._finalize_steps(rv, _cv_request.get(), from_error_handler))

    def process_response(self, response: Response) -> Response:
        """Run ``after_this_request`` and ``after_request`` functions, then save the session."""
        ctx = _cv_request.get()
        response = run(self._after_request_steps(response, ctx))
        self._save_session(response, ctx)
        return response

    def handle_user_exception(self, e: Exception) -> t.Any:
        """Handle an exception from a hook or view with a registered handler;
        re-raise it when none fits (it then becomes a 500)."""
        return run(self._handle_user_exception_steps(e, _cv_request.get()))

    def handle_exception(self, e: Exception) -> Response:
        """An unhandled exception: re-raised when propagating (``TESTING``,
        ``DEBUG`` or ``PROPAGATE_EXCEPTIONS``), else logged and turned into a 500."""
        return run(self._handle_exception_steps(e, _cv_request.get()))

    def raise_routing_exception(self, request: Request) -> t.NoReturn:
        raise request.routing_exception  # type: ignore[misc]

    def make_default_options_response(self, ctx: RequestContext | None = None) -> Response:
        if ctx is None:
            ctx = _cv_request.get()
        methods = ctx.url_adapter.allowed_methods()  # type: ignore[union-attr]
        rv = self.response_class()
        rv.allow.update(methods)
        return rv

    def open_request_session(self, ctx: RequestContext) -> SessionMixin:
        """Open the session for ``ctx`` (on first use of ``session``)."""
        interface = self.session_interface
        session = interface.open_session(self, ctx.request)  # type: ignore[arg-type]
        if session is None:
            session = interface.make_null_session(self)  # type: ignore[arg-type]
        if ctx.headers_sent and hasattr(session, "seal"):
            session.seal(
                f"The session of {ctx.request.method} {ctx.request.path} was first used after "
                "its response headers were sent, so a change could not be saved. Read or set "
                "it in the view, before the streamed body starts."
            )
        return session

    def make_response(self, rv: t.Any) -> Response:
        """Turn a view's return value into a ``Response``: ``str``/``bytes``, a dict or
        list (JSON), a response, an iterator (streamed), or a tuple adding status
        and/or headers. Anything else, ``None`` included, is a ``TypeError``."""
        kind = type(rv)
        if kind is str or kind is bytes:
            return self.response_class(rv)
        status: t.Any = None
        headers: t.Any = None
        if isinstance(rv, tuple):
            len_rv = len(rv)
            if len_rv == 3:
                rv, status, headers = rv
            elif len_rv == 2:
                if isinstance(rv[1], (Headers, dict, tuple, list)):
                    rv, headers = rv
                else:
                    rv, status = rv
            else:
                raise TypeError(
                    "The view function did not return a valid response tuple. The tuple must "
                    "have the form (body, status, headers), (body, status), or (body, headers)."
                )
        if rv is None:
            raise TypeError(
                f"The view function for {self._endpoint_name()!r} did not return a valid "
                "response. The function either returned None or ended without a return statement."
            )
        kind = type(rv)
        if kind is str or kind is bytes:
            rv = self.response_class(rv, status=status, headers=headers)
            status = headers = None
        elif kind is dict or kind is list:
            rv = self.json.response(rv)
        elif not isinstance(rv, self.response_class):
            if isinstance(rv, (str, bytes, bytearray, Iterator, AsyncIterator)):
                rv = self.response_class(rv, status=status, headers=headers)
                status = headers = None
            elif isinstance(rv, (dict, list)):
                rv = self.json.response(rv)
            elif isinstance(rv, HTTPException):
                rv = self.response_class.force_type(rv.get_response())  # type: ignore[arg-type]
            elif isinstance(rv, WerkzeugResponse) or callable(rv):
                try:
                    rv = self.response_class.force_type(rv, _cv_request.get().request.environ)  # type: ignore[arg-type]
                except TypeError as e:
                    raise TypeError(
                        f"{e}\nThe view function for {self._endpoint_name()!r} did not return a "
                        "valid response. The return type must be a string, dict, list, tuple "
                        f"with headers or status, Response instance, or WSGI callable, but it "
                        f"was a {type(rv).__name__}."
                    ).with_traceback(sys.exc_info()[2]) from None
            else:
                raise TypeError(
                    f"The view function for {self._endpoint_name()!r} did not return a valid "
                    "response. The return type must be a string, dict, list, tuple with headers "
                    "or status, Response instance, iterator, async iterator, or WSGI callable, "
                    "but it was a "
                    f"{type(rv).__name__}."
                )
        rv = t.cast(Response, rv)
        if status is not None:
            if isinstance(status, (str, bytes, bytearray)):
                rv.status = status if isinstance(status, str) else status.decode()
            else:
                rv.status_code = status
        if headers:
            rv.headers.update(headers)
        return rv

    def _endpoint_name(self) -> str | None:
        ctx = _cv_request.get(None)
        return ctx.request.endpoint if ctx is not None else None

    # Errors

    def _find_error_handler(self, e: Exception, blueprints: list[str]) -> t.Callable[[Exception], t.Any] | None:
        exc_class, code = self._get_exc_class_and_code(type(e))
        names = (*blueprints, None)
        for c in (code, None) if code is not None else (None,):
            for name in names:
                handler_map = self.error_handler_spec.get(name, {}).get(c)
                if not handler_map:
                    continue
                for cls in exc_class.__mro__:
                    handler = handler_map.get(cls)
                    if handler is not None:
                        return handler
        return None

    def trap_http_exception(self, e: Exception) -> bool:
        if self.config["TRAP_HTTP_EXCEPTIONS"]:
            return True
        trap_bad_request = self.config["TRAP_BAD_REQUEST_ERRORS"]
        if trap_bad_request is None and self.debug and isinstance(e, BadRequestKeyError):
            return True
        if trap_bad_request:
            return isinstance(e, HTTPException) and e.code == 400
        return False

    def log_exception(self, exc_info: t.Any) -> None:
        ctx = _cv_request.get(None)
        where = f" on {ctx.request.path} [{ctx.request.method}]" if ctx is not None else ""
        self.logger.error(f"Exception{where}", exc_info=exc_info)

    # Teardown

    def do_teardown_request(self, exc: BaseException | None = None) -> None:
        """Run ``teardown_request`` functions (blueprints' first), newest first."""
        run(self._teardown_request_steps(exc))

    def do_teardown_appcontext(self, exc: BaseException | None = None) -> None:
        """Run ``teardown_appcontext`` functions, newest first."""
        run(self._teardown_appcontext_steps(exc))

    def _teardown_request_steps(self, exc: BaseException | None) -> Steps[None]:
        ctx = _cv_request.get(None)
        blueprints = ctx.request.blueprints if ctx is not None else []
        funcs = self.teardown_request_funcs
        try:
            yield from _call_all(
                chain.from_iterable(reversed(funcs.get(name, ())) for name in (*blueprints, None)),
                exc,
                self.logger,
                "teardown_request",
            )
        finally:
            if request_tearing_down.receivers:
                request_tearing_down.send(self, exc=exc)

    def _teardown_websocket_steps(self, exc: BaseException | None) -> Steps[None]:
        ctx = _cv_request.get(None)
        blueprints = ctx.request.blueprints if ctx is not None else []
        funcs = self.teardown_websocket_funcs
        yield from _call_all(
            chain.from_iterable(reversed(funcs.get(name, ())) for name in (*blueprints, None)),
            exc,
            self.logger,
            "teardown_websocket",
        )

    def _teardown_appcontext_steps(self, exc: BaseException | None) -> Steps[None]:
        try:
            yield from _call_all(reversed(self.teardown_appcontext_funcs), exc, self.logger, "teardown_appcontext")
        finally:
            if appcontext_tearing_down.receivers:
                appcontext_tearing_down.send(self, exc=exc)


def _call_each(funcs: t.Iterable[t.Callable[[], t.Any]]) -> Steps[None]:
    for func in funcs:
        yield func, (), NO_KWARGS


def _is_coroutine_function(func: t.Callable[..., t.Any]) -> bool:
    """An ``async def`` function, or an object whose class has an async ``__call__``."""
    if inspect.iscoroutinefunction(func):
        return True
    call = type(func).__dict__.get("__call__")
    return not inspect.isfunction(func) and inspect.iscoroutinefunction(call)
