"""Helpers used in views: URLs, redirects, errors, responses, files and flashed messages."""

from __future__ import annotations

import importlib.util
import os
import sys
import typing as t
from datetime import datetime

from werkzeug.exceptions import abort as _abort
from werkzeug.utils import redirect as _redirect
from werkzeug.utils import send_file as _send_file
from werkzeug.utils import send_from_directory as _send_from_directory
from werkzeug.wrappers import Response as BaseResponse

from .. import signals
from ..contexts.ctx import _cv_app, _cv_request, after_this_request, has_app_context, has_request_context
from ..contexts.globals import current_app, request, session
from ..contexts.propagation import copy_current_request_context, stream_with_context
from .wrappers import Response, _split_blueprint_path  # noqa: F401  # Flask's helpers has it: extensions import it there

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

__all__ = [
    "abort",
    "after_this_request",
    "copy_current_request_context",
    "flash",
    "get_debug_flag",
    "get_flashed_messages",
    "get_load_dotenv",
    "get_template_attribute",
    "get_root_path",
    "has_app_context",
    "has_request_context",
    "make_response",
    "redirect",
    "send_file",
    "send_from_directory",
    "stream_body",
    "stream_with_context",
    "marked_stream_body",
    "url_for",
]


def get_root_path(import_name: str) -> str:
    """The folder of the module or package ``import_name``, else the working directory."""
    module = sys.modules.get(import_name)
    filename = getattr(module, "__file__", None)
    if filename is None:
        try:
            spec = importlib.util.find_spec(import_name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or spec.origin in (None, "namespace", "built-in", "frozen"):
            return os.getcwd()
        filename = spec.origin
    return os.path.dirname(os.path.abspath(filename))


def url_for(
    endpoint: str,
    *,
    _anchor: str | None = None,
    _method: str | None = None,
    _scheme: str | None = None,
    _external: bool | None = None,
    **values: t.Any,
) -> str:
    """The URL of ``endpoint`` with ``values``; see ``Tether.url_for``."""
    return current_app.url_for(
        endpoint, _anchor=_anchor, _method=_method, _scheme=_scheme, _external=_external, **values
    )


def redirect(location: str, code: int = 302, Response: type[BaseResponse] | None = None) -> BaseResponse:
    """A redirect response, of the current app's response class when there is one."""
    if _cv_app.get(None) is not None:
        return t.cast(BaseResponse, current_app.redirect(location, code=code))
    return _redirect(location, code=code, Response=Response)


def abort(code: int | Response, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
    """Raise the ``HTTPException`` for a status code (or a response)."""
    ctx = _cv_app.get(None)
    if ctx is not None:
        current_app.aborter(code, *args, **kwargs)
    _abort(code, *args, **kwargs)


def make_response(*args: t.Any) -> Response:
    """Turn a view's return value into a response object, to add headers to it."""
    if not args:
        return current_app.response_class()
    if len(args) == 1:
        args = args[0]
    return current_app.make_response(args)


def _prepare_send_file_kwargs(**kwargs: t.Any) -> dict[str, t.Any]:
    """Werkzeug's file-sending arguments completed from the current app and
    request: its ``environ``, ``USE_X_SENDFILE``, response class, root path,
    and ``get_send_file_max_age`` when ``max_age`` is not given (or ``None``)."""
    app = current_app._get_current_object()
    if kwargs.get("max_age") is None:
        kwargs["max_age"] = app.get_send_file_max_age
    kwargs["environ"] = request.environ
    kwargs["use_x_sendfile"] = app.config["USE_X_SENDFILE"]
    kwargs["response_class"] = app.response_class
    kwargs["_root_path"] = app.root_path
    return kwargs


def send_file(
    path_or_file: os.PathLike[t.AnyStr] | str | t.IO[bytes],
    mimetype: str | None = None,
    as_attachment: bool = False,
    download_name: str | None = None,
    conditional: bool = True,
    etag: bool | str = True,
    last_modified: datetime | int | float | None = None,
    max_age: None | int | t.Callable[[str | None], int | None] = None,
) -> Response:
    """Send a file's contents; see Werkzeug's ``send_file`` for the options."""
    response = _send_file(
        **_prepare_send_file_kwargs(
            path_or_file=path_or_file,
            mimetype=mimetype,
            as_attachment=as_attachment,
            download_name=download_name,
            conditional=conditional,
            etag=etag,
            last_modified=last_modified,
            max_age=max_age,
        )
    )
    return t.cast("Response", response)


def send_from_directory(directory: str | os.PathLike[str], path: str | os.PathLike[str], **kwargs: t.Any) -> Response:
    """Send a file from inside ``directory``; a path escaping it is a 404."""
    response = _send_from_directory(directory, path, **_prepare_send_file_kwargs(**kwargs))
    return t.cast("Response", response)


def flash(message: str, category: str = "message") -> None:
    """Keep a message in the session for the next request to show."""
    flashes = session.get("_flashes", [])
    flashes.append((category, message))
    session["_flashes"] = flashes
    if signals.message_flashed.receivers:
        app = current_app._get_current_object()
        signals.message_flashed.send(app, message=message, category=category)


@t.overload
def get_flashed_messages(with_categories: t.Literal[False] = False, category_filter: t.Iterable[str] = ()) -> list[str]: ...
@t.overload
def get_flashed_messages(with_categories: t.Literal[True], category_filter: t.Iterable[str] = ()) -> list[tuple[str, str]]: ...
@t.overload
def get_flashed_messages(
    with_categories: bool = False, category_filter: t.Iterable[str] = ()
) -> list[str] | list[tuple[str, str]]: ...
def get_flashed_messages(
    with_categories: bool = False, category_filter: t.Iterable[str] = ()
) -> list[str] | list[tuple[str, str]]:
    """The flashed messages, removed from the session on first call in a request:
    the texts, or ``(category, message)`` pairs with ``with_categories``."""
    ctx = _cv_request.get()
    flashes = ctx.flashes
    if flashes is None:
        if getattr(session, "sealed_reason", None) is not None:
            # After the response (as in `with client:` in tests): its cookie is
            # sent, so there is nothing to remove them from; read them.
            flashes = list(session.get("_flashes", ()))
        else:
            flashes = session.pop("_flashes") if "_flashes" in session else []
        ctx.flashes = flashes
    if category_filter:
        flashes = [f for f in flashes if f[0] in category_filter]
    if not with_categories:
        return [x[1] for x in flashes]
    return flashes


def stream_body(view: F) -> F:
    """Mark an async view that reads its request body as it arrives
    (``async for chunk in request.iter_body()``) instead of having it read
    before the view runs."""
    setattr(view, "tether_stream_body", True)
    return view


def marked_stream_body(view: t.Callable[..., t.Any]) -> bool:
    """Whether ``view`` was marked with :func:`stream_body`."""
    return bool(getattr(view, "tether_stream_body", False))


def _environ_flag(name: str) -> str | None:
    """``TETHER_<name>``, else Flask's ``FLASK_<name>`` (an app moved from Flask keeps its settings)."""
    value = os.environ.get(f"TETHER_{name}")
    return value if value is not None else os.environ.get(f"FLASK_{name}")


def get_debug_flag() -> bool:
    """Whether debug mode is asked for by the environment (``TETHER_DEBUG`` or ``FLASK_DEBUG``)."""
    value = _environ_flag("DEBUG")
    if not value:
        return False
    return value.lower() not in ("0", "false", "no")


def get_load_dotenv(default: bool = True) -> bool:
    """Whether ``.env`` files should be loaded: not when ``TETHER_SKIP_DOTENV``
    (or ``FLASK_SKIP_DOTENV``) is set to a true value."""
    value = _environ_flag("SKIP_DOTENV")
    if not value:
        return default
    return value.lower() in ("0", "false", "no")


def get_template_attribute(template_name: str, attribute: str) -> t.Any:
    """A macro or variable a template exports, to call from Python code."""
    return getattr(current_app.jinja_env.get_template(template_name).module, attribute)
