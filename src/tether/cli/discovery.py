"""Finding the app a command runs against: ``--app module:name``,
``module:create_app()``, ``TETHER_APP``/``FLASK_APP``, or a ``wsgi.py``/``app.py`` here."""

from __future__ import annotations

import ast
import inspect
import os
import re
import shlex
import sys
import traceback
import typing as t

import click

from ..application.helpers import get_debug_flag, get_load_dotenv
from ..application.pipeline import Application
from ..locals import LocalProxy

__all__ = ["App", "CliApp", "NoAppException", "ScriptInfo", "find_best_app", "locate_app", "main_app", "prepare_import"]


#: What the command line loads: a tether app, or a dispatcher whose ``app`` is one.
App = t.Any


class CliApp(t.Protocol):
    """An app with its own command group (``tether.Tether``)."""

    @property
    def cli(self) -> click.Group: ...


class NoAppException(click.UsageError):
    """The app to load could not be found or imported."""


def _is_app(obj: object) -> bool:
    """A tether app, or a ``DispatcherMiddleware`` serving one (its ``app``)."""
    if isinstance(obj, Application):
        return True
    if isinstance(obj, LocalProxy):  # e.g. a module's imported current_app
        return False
    try:
        return isinstance(getattr(obj, "app", None), Application)
    except Exception:  # another library's proxy, unbound (Flask's current_app)
        return False


def main_app(obj: t.Any) -> App:
    """The app itself, for commands that need one (``routes``, ``shell``, ``app.cli``)."""
    return obj if isinstance(obj, Application) else obj.app


def find_best_app(module: t.Any) -> App:
    """The app in ``module``: ``app`` or ``application``, the only app instance, or
    what ``create_app()`` / ``make_app()`` returns."""
    for attr_name in ("app", "application"):
        app = getattr(module, attr_name, None)
        if _is_app(app):
            return app
    matches = [v for v in module.__dict__.values() if _is_app(v)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NoAppException(
            f"Detected multiple tether applications in module '{module.__name__}'. Use "
            f"'{module.__name__}:name' to specify the correct one."
        )
    flask_apps = [v for v in module.__dict__.values() if _is_flask_app(v)]
    for attr_name in ("create_app", "make_app"):
        factory = getattr(module, attr_name, None)
        if inspect.isfunction(factory):
            try:
                app = factory()
            except TypeError as e:
                if not _called_with_wrong_args(factory):
                    raise
                raise NoAppException(
                    f"Detected factory '{attr_name}' in module '{module.__name__}', but could not "
                    f"call it without arguments. Use '{module.__name__}:{attr_name}(args)' to specify arguments."
                ) from e
            if _is_app(app):
                return app
            flask_apps += [app] if _is_flask_app(app) else []
    if flask_apps:
        raise NoAppException(
            f"Module '{module.__name__}' makes a Flask app (the installed Flask's), not a tether one. "
            + flask_hint()
        )
    raise NoAppException(
        f"Failed to find tether application or factory in module '{module.__name__}'. Use "
        f"'{module.__name__}:name' to specify one."
    )


def _is_flask_app(obj: object) -> bool:
    """An app of the real Flask (not tether under ``alias_flask()``)."""
    return any(cls.__module__ == "flask.app" and cls.__name__ == "Flask" for cls in type(obj).__mro__)


def flask_hint() -> str:
    """How to run code written for Flask on tether: through the alias that
    makes ``import flask`` give tether (``tether.compat``), with this same
    command line when it is known."""
    argv = sys.argv
    runs_tether = bool(argv) and (
        os.path.basename(argv[0]) == "tether" or argv[0].endswith(os.path.join("tether", "__main__.py"))
    )
    command = "python -m tether.compat " + (shlex.join(argv[1:]) if runs_tether else "--app MODULE COMMAND")
    return (
        "tether runs code written for Flask when 'import flask' gives tether: run this command as "
        f"'{command}' (tether's command with flask aliased to tether), or call "
        "tether.compat.alias_flask() before the app imports flask (at the top of its wsgi.py)."
    )


def _called_with_wrong_args(f: t.Callable[..., t.Any]) -> bool:
    tb = sys.exc_info()[2]
    try:
        while tb is not None:
            if tb.tb_frame.f_code is f.__code__:
                return False
            tb = tb.tb_next
        return True
    finally:
        del tb


def find_app_by_string(module: t.Any, app_name: str) -> App:
    """The app named by ``app_name`` in ``module``: a name or a factory call."""
    try:
        expr = ast.parse(app_name.strip(), mode="eval").body
    except SyntaxError:
        raise NoAppException(f"Failed to parse {app_name!r} as an attribute name or function call.") from None
    if isinstance(expr, ast.Name):
        name, args, kwargs = expr.id, [], {}
    elif isinstance(expr, ast.Call):
        if not isinstance(expr.func, ast.Name):
            raise NoAppException(f"Function reference must be a simple name: {app_name!r}.")
        name = expr.func.id
        try:
            args = [ast.literal_eval(arg) for arg in expr.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expr.keywords if kw.arg is not None}
        except ValueError:
            raise NoAppException(f"Failed to parse arguments as literal values: {app_name!r}.") from None
    else:
        raise NoAppException(f"Failed to parse {app_name!r} as an attribute name or function call.")
    try:
        attr = getattr(module, name)
    except AttributeError as e:
        raise NoAppException(f"Failed to find attribute {name!r} in {module.__name__!r}.") from e
    if inspect.isfunction(attr):
        try:
            app = attr(*args, **kwargs)
        except TypeError as e:
            if not _called_with_wrong_args(attr):
                raise
            raise NoAppException(
                f"The factory {app_name!r} in module {module.__name__!r} could not be called with the specified arguments."
            ) from e
    else:
        app = attr
    if _is_app(app):
        return app
    raise NoAppException(f"A valid tether application was not obtained from '{module.__name__}:{app_name}'.")


def prepare_import(path: str) -> str:
    """Put the folder of ``path`` on ``sys.path`` and return its module name."""
    path = os.path.realpath(path)
    fname, ext = os.path.splitext(path)
    if ext == ".py":
        path = fname
    if os.path.basename(path) == "__init__":
        path = os.path.dirname(path)
    module_name = []
    while True:
        path, name = os.path.split(path)
        module_name.append(name)
        if not os.path.exists(os.path.join(path, "__init__.py")):
            break
    if sys.path[0] != path:
        sys.path.insert(0, path)
    return ".".join(module_name[::-1])


def _path_is_ancestor(path: str, other: str) -> bool:
    """Whether ``other`` is ``path`` with more appended (by text, no file-system
    lookup): the rest of ``other``, joined back onto ``path``, gives ``other``.
    Flask keeps this private helper; extensions import it."""
    rest = other[len(path):].lstrip(os.sep)
    return os.path.join(path, rest) == other


def locate_app(module_name: str, app_name: str | None, raise_if_not_found: bool = True) -> App:
    """Import ``module_name`` and find the app in it. With ``raise_if_not_found``
    false, a module that is not there gives ``None``; an import error inside it
    is still raised."""
    try:
        __import__(module_name)
    except ImportError as e:
        tb = sys.exc_info()[2]
        missing = (e.name or "") if isinstance(e, ModuleNotFoundError) else ""
        if missing == "flask" or missing.startswith("flask."):
            raise NoAppException(
                f"While importing {module_name!r}: it imports {missing}, and Flask is not installed. {flask_hint()}"
            ) from None
        if tb is not None and tb.tb_next is not None:
            raise NoAppException(
                f"While importing {module_name!r}, an ImportError was raised:\n\n{traceback.format_exc()}"
            ) from None
        if raise_if_not_found:
            raise NoAppException(f"Could not import {module_name!r}.") from None
        return None
    module = sys.modules[module_name]
    return find_best_app(module) if app_name is None else find_app_by_string(module, app_name)


class ScriptInfo:
    """How the CLI finds and loads the app, once: a ``create_app`` callable, the
    ``--app`` import path (``TETHER_APP`` or ``FLASK_APP``), or a ``wsgi.py`` or
    ``app.py`` in the current directory."""

    def __init__(
        self,
        app_import_path: str | None = None,
        create_app: t.Callable[..., App] | None = None,
        set_debug_flag: bool = True,
        load_dotenv_defaults: bool = True,
    ) -> None:
        self.app_import_path = app_import_path
        self.create_app = create_app
        self.set_debug_flag = set_debug_flag
        #: Whether the ``.flaskenv`` and ``.env`` files are read (not when
        #: ``TETHER_SKIP_DOTENV`` or ``FLASK_SKIP_DOTENV`` says so).
        self.load_dotenv_defaults = get_load_dotenv(load_dotenv_defaults)
        self.data: dict[str, t.Any] = {}
        self._loaded_app: App | None = None

    def load_app(self) -> App:
        if self._loaded_app is not None:
            return self._loaded_app
        app: App | None = None
        if self.create_app is not None:
            app = self.create_app()
        elif self.app_import_path:
            path, name = (re.split(r":(?![\\/])", self.app_import_path, maxsplit=1) + [None])[:2]
            app = locate_app(prepare_import(path), name)
        else:
            for path in ("wsgi.py", "app.py"):
                app = locate_app(prepare_import(path), None, raise_if_not_found=False)
                if app is not None:
                    break
        if app is None:
            raise NoAppException(
                "Could not locate a tether application. Use the '--app' option, the 'TETHER_APP' "
                "or 'FLASK_APP' environment variable, or a 'wsgi.py' or 'app.py' file in the current directory."
            )
        if self.set_debug_flag:
            main_app(app).debug = get_debug_flag()
        self._loaded_app = app
        return app
