"""What apps and blueprints share: route decorators and hook registries.

Hooks are stored per blueprint name (``None`` for the app), so at request time
the app looks up only the blueprints that the matched endpoint belongs to.
"""

from __future__ import annotations

import functools
import os
import typing as t
from collections import defaultdict
from functools import cached_property

from jinja2 import FileSystemLoader
from werkzeug.exceptions import HTTPException, default_exceptions

from ..contexts.globals import current_app
from .helpers import get_root_path, send_from_directory

if t.TYPE_CHECKING:
    from .wrappers import Response

__all__ = ["Scaffold", "endpoint_from_view_func"]

F = t.TypeVar("F", bound=t.Callable[..., t.Any])
ExcSpec = t.Union[type[Exception], int]


def registering(add: t.Callable[..., None], name: str | None) -> t.Callable[[F], F]:
    """A decorator that registers the function with ``add(f, name=name)`` and
    returns it unchanged (``@app.template_filter()`` and the like)."""

    def decorator(f: F) -> F:
        add(f, name=name)
        return f

    return decorator


def setupmethod(f: F) -> F:
    """Marks a method that sets the app up: calling it once the app has handled
    a request fails, as in Flask, since workers that already serve would not
    all see the change."""
    name = f.__name__

    def wrapper(self: Scaffold, *args: t.Any, **kwargs: t.Any) -> t.Any:
        self._check_setup_finished(name)
        return f(self, *args, **kwargs)

    return t.cast(F, functools.update_wrapper(wrapper, f))


class Scaffold:
    """Routes, hooks, error handlers and folders of an app or a blueprint."""

    name: str

    def __init__(
        self,
        import_name: str,
        static_folder: str | os.PathLike[str] | None = None,
        static_url_path: str | None = None,
        template_folder: str | os.PathLike[str] | None = None,
        root_path: str | None = None,
    ) -> None:
        self.import_name = import_name
        self.root_path = root_path if root_path is not None else get_root_path(import_name)
        self.template_folder = template_folder
        self._static_folder = os.fspath(static_folder) if static_folder is not None else None
        self._static_url_path = static_url_path
        self.view_functions: dict[str, t.Callable[..., t.Any]] = {}
        self.error_handler_spec: dict[str | None, dict[int | None, dict[type[Exception], t.Callable[..., t.Any]]]] = (
            defaultdict(lambda: defaultdict(dict))
        )
        self.before_request_funcs: dict[str | None, list[t.Callable[[], t.Any]]] = defaultdict(list)
        self.after_request_funcs: dict[str | None, list[t.Callable[[Response], Response]]] = defaultdict(list)
        self.teardown_request_funcs: dict[str | None, list[t.Callable[[BaseException | None], None]]] = defaultdict(list)
        self.template_context_processors: dict[str | None, list[t.Callable[[], dict[str, t.Any]]]] = defaultdict(list)
        self.url_value_preprocessors: dict[str | None, list[t.Callable[..., None]]] = defaultdict(list)
        self.url_default_functions: dict[str | None, list[t.Callable[..., None]]] = defaultdict(list)
        self.before_websocket_funcs: dict[str | None, list[t.Callable[[], t.Any]]] = defaultdict(list)
        self.after_websocket_funcs: dict[str | None, list[t.Callable[[], t.Any]]] = defaultdict(list)
        self.teardown_websocket_funcs: dict[str | None, list[t.Callable[[BaseException | None], None]]] = (
            defaultdict(list)
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def _check_setup_finished(self, f_name: str) -> None:
        """Raise if setting up is over (an app that handled a request)."""

    # Folders

    @property
    def static_folder(self) -> str | None:
        if self._static_folder is None:
            return None
        return os.path.join(self.root_path, self._static_folder)

    @static_folder.setter
    def static_folder(self, value: str | os.PathLike[str] | None) -> None:
        self._static_folder = os.fspath(value).rstrip(r"\/") if value is not None else None

    @cached_property
    def jinja_loader(self) -> FileSystemLoader | None:
        """The loader for this scaffold's template folder (``None`` without one)."""
        if self.template_folder is None:
            return None
        return FileSystemLoader(os.path.join(self.root_path, self.template_folder))

    @property
    def has_static_folder(self) -> bool:
        return self._static_folder is not None

    @property
    def static_url_path(self) -> str | None:
        if self._static_url_path is not None:
            return self._static_url_path
        if self._static_folder is not None:
            return "/" + os.path.basename(self._static_folder).rstrip("/")
        return None

    @static_url_path.setter
    def static_url_path(self, value: str | None) -> None:
        self._static_url_path = value.rstrip("/") if value is not None else None

    def send_static_file(self, filename: str) -> Response:
        """The view behind the ``static`` endpoint."""
        if self.static_folder is None:
            raise RuntimeError(f"{self!r} has no static folder.")
        return send_from_directory(self.static_folder, filename, max_age=self.get_send_file_max_age(filename))

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """The cache lifetime of a sent file, ``SEND_FILE_MAX_AGE_DEFAULT`` unless
        a subclass decides per file."""
        value = current_app.config["SEND_FILE_MAX_AGE_DEFAULT"]
        if value is None or isinstance(value, int):
            return value
        return int(value.total_seconds())

    def open_resource(self, resource: str, mode: str = "rb", encoding: str | None = None) -> t.IO[t.Any]:
        """Open a file relative to ``root_path`` for reading."""
        if mode not in {"r", "rt", "rb"}:
            raise ValueError("Resources can only be opened for reading.")
        path = os.path.join(self.root_path, resource)
        if mode == "rb":
            return open(path, mode)
        return open(path, mode, encoding=encoding)

    # Routes

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: t.Callable[..., t.Any] | None = None,
        provide_automatic_options: bool | None = None,
        **options: t.Any,
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement 'add_url_rule'.")

    def route(self, rule: str, **options: t.Any) -> t.Callable[[F], F]:
        """Register the decorated function as the view for ``rule``."""

        def decorator(f: F) -> F:
            endpoint = options.pop("endpoint", None)
            self.add_url_rule(rule, endpoint, f, **options)
            return f

        return decorator

    def _method_route(self, method: str, rule: str, options: dict[str, t.Any]) -> t.Callable[[F], F]:
        if "methods" in options:
            raise TypeError("Use the 'route' decorator to use the 'methods' argument.")
        return self.route(rule, methods=[method], **options)

    def get(self, rule: str, **options: t.Any) -> t.Callable[[F], F]:
        return self._method_route("GET", rule, options)

    def post(self, rule: str, **options: t.Any) -> t.Callable[[F], F]:
        return self._method_route("POST", rule, options)

    def put(self, rule: str, **options: t.Any) -> t.Callable[[F], F]:
        return self._method_route("PUT", rule, options)

    def patch(self, rule: str, **options: t.Any) -> t.Callable[[F], F]:
        return self._method_route("PATCH", rule, options)

    def delete(self, rule: str, **options: t.Any) -> t.Callable[[F], F]:
        return self._method_route("DELETE", rule, options)

    def websocket(self, rule: str, **options: t.Any) -> t.Callable[[F], F]:
        """Register the decorated function (sync or async) as the WebSocket handler
        for ``rule``; it is served under ASGI."""

        def decorator(f: F) -> F:
            endpoint = options.pop("endpoint", None)
            self.add_url_rule(rule, endpoint, f, websocket=True, methods=["GET"], provide_automatic_options=False, **options)
            return f

        return decorator

    @setupmethod
    def endpoint(self, endpoint: str) -> t.Callable[[F], F]:
        """Register the decorated function as the view of an endpoint added by
        ``add_url_rule`` without a view."""

        def decorator(f: F) -> F:
            self.view_functions[endpoint] = f
            return f

        return decorator

    # Hooks

    @setupmethod
    def before_request(self, f: F) -> F:
        """Run ``f`` before each request; a non-``None`` return is the response."""
        self.before_request_funcs[None].append(f)
        return f

    @setupmethod
    def after_request(self, f: F) -> F:
        """Run ``f(response)`` after each request; it returns the response to send."""
        self.after_request_funcs[None].append(f)
        return f

    @setupmethod
    def teardown_request(self, f: F) -> F:
        """Run ``f(exc)`` when the request context pops, whatever happened."""
        self.teardown_request_funcs[None].append(f)
        return f

    @setupmethod
    def before_websocket(self, f: F) -> F:
        """Run ``f()`` before each WebSocket handler; a non-``None`` return rejects
        the connection with that response."""
        self.before_websocket_funcs[None].append(f)
        return f

    @setupmethod
    def after_websocket(self, f: F) -> F:
        """Run ``f()`` after each WebSocket handler that returned normally."""
        self.after_websocket_funcs[None].append(f)
        return f

    @setupmethod
    def teardown_websocket(self, f: F) -> F:
        """Run ``f(exc)`` once when a WebSocket connection ends, however it ends."""
        self.teardown_websocket_funcs[None].append(f)
        return f

    @setupmethod
    def context_processor(self, f: F) -> F:
        """``f()`` returns a dict of names to add to every template's context."""
        self.template_context_processors[None].append(f)
        return f

    @setupmethod
    def url_value_preprocessor(self, f: F) -> F:
        """Run ``f(endpoint, values)`` on the matched URL values before the view."""
        self.url_value_preprocessors[None].append(f)
        return f

    @setupmethod
    def url_defaults(self, f: F) -> F:
        """Run ``f(endpoint, values)`` to fill in values when building URLs."""
        self.url_default_functions[None].append(f)
        return f

    def errorhandler(self, code_or_exception: ExcSpec) -> t.Callable[[F], F]:
        """Handle an HTTP status code or an exception class (and its subclasses)."""

        def decorator(f: F) -> F:
            self.register_error_handler(code_or_exception, f)
            return f

        return decorator

    @setupmethod
    def register_error_handler(self, code_or_exception: ExcSpec, f: t.Callable[..., t.Any]) -> None:
        exc_class, code = self._get_exc_class_and_code(code_or_exception)
        self.error_handler_spec[None][code][exc_class] = f

    @staticmethod
    def _get_exc_class_and_code(exc_class_or_code: ExcSpec) -> tuple[type[Exception], int | None]:
        if isinstance(exc_class_or_code, int):
            try:
                exc_class: type[Exception] = default_exceptions[exc_class_or_code]
            except KeyError:
                raise ValueError(
                    f"'{exc_class_or_code}' is not a recognized HTTP error code. Use a "
                    "subclass of HTTPException with that code instead."
                ) from None
        else:
            exc_class = exc_class_or_code
        if isinstance(exc_class, Exception):
            raise TypeError(f"{exc_class!r} is an instance, not a class. Handlers can only be registered for classes.")
        if not issubclass(exc_class, Exception):
            raise ValueError(f"'{exc_class.__name__}' is not a subclass of Exception. Handlers can only be registered for exceptions.")
        if issubclass(exc_class, HTTPException):
            return exc_class, exc_class.code
        return exc_class, None


def endpoint_from_view_func(view_func: t.Callable[..., t.Any] | None) -> str:
    assert view_func is not None, "expected view func if endpoint is not provided."
    return view_func.__name__
