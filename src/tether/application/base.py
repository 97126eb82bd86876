"""The application as it is set up: config, registration of routes, hooks,
blueprints and templates, its logger, and the contexts it creates.

Each module of this package adds one concern to the class below it:
``AppBase`` (here) → ``URLMapping`` (``urls``) → ``ResponseMaking``
(``responses``) → ``ErrorHandling`` (``errors``) → ``Application``
(``pipeline``). None of them touches a socket or a WSGI/ASGI detail.
"""

from __future__ import annotations

import logging
import os
import sys
import typing as t
import weakref
from datetime import timedelta
from functools import cached_property
from itertools import chain

from jinja2 import BaseLoader
from werkzeug.datastructures import ImmutableDict
from werkzeug.exceptions import Aborter
from werkzeug.routing import Map, Rule

from ..contexts.ctx import RequestContext, _AppCtxGlobals, _cv_app, _cv_request
from ..contexts.globals import g, request, session
from .blueprints import BlueprintBase
from .config import DEFAULT_CONFIG, Config, ConfigAttribute
from .helpers import get_debug_flag, get_flashed_messages, url_for
from .instance import default_instance_path
from .json.provider import DefaultJSONProvider, JSONProvider
from .log import create_logger
from .plan import Plan
from .routing import FastRouter
from .scaffold import Scaffold, endpoint_from_view_func, registering, setupmethod
from .sessions import SecureCookieSessionInterface, SessionInterface, SessionMixin
from .templating import DispatchingJinjaLoader, Environment, default_template_ctx_processor
from .wrappers import Request, Response

__all__ = ["AppBase"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def _make_timedelta(value: timedelta | int | None) -> timedelta | None:
    """A lifetime given in seconds as a ``timedelta``; ``None`` and timedeltas
    as they are (Flask's private helper, which extensions import)."""
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


class AppBase(Scaffold):
    """An application's setup: what is registered on it, and how it is configured."""

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
        get_converter=t.cast("t.Callable[[t.Any], timedelta]", _make_timedelta),  # the config holds a lifetime
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
        if instance_path is not None and not os.path.isabs(instance_path):
            raise ValueError("An instance path given to the app must be absolute; this one is relative.")
        self.instance_path = instance_path or self.auto_find_instance_path()
        self.config = self.make_config(instance_relative_config)
        #: Set by the first request: setup methods refuse to run after it.
        self._got_first_request = False
        #: The path its requests take (tether's step or the app's own for each
        #: override point), compiled at the first request (``plan.Plan``).
        self._plan: Plan | None = None
        #: Whether ``create_url_adapter`` is replaced: URLs are then matched
        #: through it alone, never the fast router.
        self._custom_url_adapter = False
        self.aborter = self.make_aborter()
        self.json: JSONProvider = self.json_provider_class(self)
        self.url_build_error_handlers: list[t.Callable[[Exception, str, dict[str, t.Any]], str]] = []
        self.teardown_appcontext_funcs: list[t.Callable[[BaseException | None], None]] = []
        self.shell_context_processors: list[t.Callable[[], dict[str, t.Any]]] = []
        self.before_serving_funcs: list[t.Callable[[], t.Any]] = []
        self.after_serving_funcs: list[t.Callable[[], t.Any]] = []
        self.blueprints: dict[str, BlueprintBase] = {}
        self.extensions: dict[str, t.Any] = {}
        self.url_map = self.url_map_class(host_matching=host_matching)
        self.subdomain_matching = subdomain_matching
        #: Exact-answer tables in front of ``url_map``, built on first match.
        self._router: FastRouter | None = None
        self.template_context_processors[None].append(default_template_ctx_processor)
        if self.has_static_folder:
            assert bool(static_host) == host_matching, "Invalid static_host/host_matching combination"
            self_ref = weakref.ref(self)  # the view lives in the app: no cycle back to it
            self.add_url_rule(
                f"{self.static_url_path}/<path:filename>",
                endpoint="static",
                host=static_host,
                view_func=lambda **kw: self_ref().send_static_file(**kw),  # type: ignore[union-attr]
            )

    def auto_find_instance_path(self) -> str:
        """The instance folder when none is given: ``instance`` next to the
        project, or in ``<prefix>/var/<name>-instance`` for an installed one."""
        return default_instance_path(self.import_name, self.name)

    def make_aborter(self) -> Aborter:
        """The ``abort`` of this app; override to raise other exceptions."""
        return self.aborter_class()

    def open_instance_resource(self, resource: str, mode: str = "rb", encoding: str | None = "utf-8") -> t.IO[t.Any]:
        """Open a file of the instance folder (writing too, unlike ``open_resource``)."""
        path = os.path.join(self.instance_path, resource)
        return open(path, mode) if "b" in mode else open(path, mode, encoding=encoding)

    def select_jinja_autoescape(self, filename: str | None) -> bool:
        """Whether a template is autoescaped: strings, and HTML/XML/SVG files."""
        return filename is None or filename.endswith((".html", ".htm", ".xml", ".xhtml", ".svg"))

    def make_config(self, instance_relative: bool = False) -> Config:
        """The app's config: the defaults, with ``DEBUG`` from the environment
        (``TETHER_DEBUG`` or ``FLASK_DEBUG``); relative file names in it are
        read from the instance folder when ``instance_relative``."""
        defaults = dict(self.default_config)
        defaults["DEBUG"] = get_debug_flag()
        return self.config_class(self.instance_path if instance_relative else self.root_path, defaults)

    # Properties

    @cached_property
    def name(self) -> str:  # type: ignore[override]  # Scaffold's is a plain attribute
        """The import name, or the script's name when run as ``__main__``;
        assign it to display another."""
        return _app_name(self.import_name)

    @cached_property
    def logger(self) -> logging.Logger:
        """The logger named after the app; errors of requests and teardowns go
        here (``tether.application.log``)."""
        return create_logger(self)

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

    @cached_property
    def jinja_env(self) -> Environment:
        return self.create_jinja_environment()

    def create_global_jinja_loader(self) -> BaseLoader:
        """The loader of the app's Jinja environment: the app's templates, then
        each blueprint's. Override to load templates from elsewhere."""
        return DispatchingJinjaLoader(self)

    def create_jinja_environment(self) -> Environment:
        options = dict(self.jinja_options)
        options.setdefault("autoescape", self.select_jinja_autoescape)
        auto_reload = self.config["TEMPLATES_AUTO_RELOAD"]
        options.setdefault("auto_reload", self.debug if auto_reload is None else auto_reload)
        env = self.jinja_environment(self, **options)
        # The proxies are globals, not only context variables, so an imported
        # macro (which gets no template context) sees them, as on Flask.
        env.globals.update(
            url_for=url_for, get_flashed_messages=get_flashed_messages, config=self.config,
            request=request, session=session, g=g,
        )
        env.policies["json.dumps_function"] = self.json.dumps
        return env

    # Registration

    def iter_blueprints(self) -> t.ValuesView[BlueprintBase]:
        return self.blueprints.values()

    def _check_setup_finished(self, f_name: str) -> None:
        if self._got_first_request:
            raise AssertionError(
                f"The setup method '{f_name}' can no longer be called on the application. It has already "
                "handled its first request, any changes will not be applied consistently.\n"
                "Make sure all imports, decorators, functions, etc. needed to set up the application "
                "are done before running it."
            )

    @setupmethod
    def register_blueprint(self, blueprint: BlueprintBase, **options: t.Any) -> None:
        blueprint.register(self, options)
        self._router = None

    @setupmethod
    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: t.Callable[..., t.Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: t.Any,
    ) -> None:
        if endpoint is None:
            endpoint = endpoint_from_view_func(view_func)
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
        setattr(rule_obj, "provide_automatic_options", provide_automatic_options)  # read by the pipeline
        self.url_map.add(rule_obj)
        self._router = None
        if view_func is not None:
            old = self.view_functions.get(endpoint)
            if old is not None and old != view_func:
                raise AssertionError(
                    f"View function mapping is overwriting an existing endpoint function: {endpoint}"
                )
            self.view_functions[endpoint] = view_func

    @setupmethod
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

    @setupmethod
    def shell_context_processor(self, f: F) -> F:
        self.shell_context_processors.append(f)
        return f

    def template_filter(self, name: str | None = None) -> t.Callable[[F], F]:
        return registering(self.add_template_filter, name)

    @setupmethod
    def add_template_filter(self, f: t.Callable[..., t.Any], name: str | None = None) -> None:
        self.jinja_env.filters[name or f.__name__] = f

    def template_global(self, name: str | None = None) -> t.Callable[[F], F]:
        return registering(self.add_template_global, name)

    @setupmethod
    def add_template_global(self, f: t.Callable[..., t.Any], name: str | None = None) -> None:
        self.jinja_env.globals[name or f.__name__] = f

    def template_test(self, name: str | None = None) -> t.Callable[[F], F]:
        return registering(self.add_template_test, name)

    @setupmethod
    def add_template_test(self, f: t.Callable[..., bool], name: str | None = None) -> None:
        self.jinja_env.tests[name or f.__name__] = f

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

    def open_request_session(self, ctx: RequestContext[Request]) -> SessionMixin:
        """Open the session for ``ctx`` (on first use of ``session``)."""
        interface = self.session_interface
        session = interface.open_session(self, ctx.request)
        if session is None:
            session = interface.make_null_session(self)
        if ctx.headers_final and hasattr(session, "seal"):
            session.seal(
                f"The session of {ctx.request.method} {ctx.request.path} was first used after "
                "its response headers were sent, so a change could not be saved. Read or set "
                "it in the view, before the streamed body starts."
            )
        return session


def _app_name(import_name: str) -> str:
    if import_name == "__main__":
        filename = getattr(sys.modules["__main__"], "__file__", None)
        if filename is None:
            return "__main__"
        return os.path.splitext(os.path.basename(filename))[0]
    return import_name
