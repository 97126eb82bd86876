"""What the command line reads from and says about its surroundings: ``.env``
files, the versions in use, the banner of the development server."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import typing as t

import click
from click.core import ParameterSource

from ..application import FLASK_VERSION

__all__ = ["get_version", "load_dotenv", "set_debug_from_option", "show_server_banner", "version_option"]


def load_dotenv(path: str | os.PathLike[str] | None = None, load_defaults: bool = True) -> bool:
    """Set environment variables from ``.flaskenv`` and ``.env`` (found from the
    current directory upwards) and then from ``path``; variables already set
    win. Returns whether any file set something. Without python-dotenv this
    does nothing, and says so if such files are there."""
    try:
        import dotenv  # optional: python-dotenv
    except ImportError:
        if path or os.path.isfile(".env") or os.path.isfile(".flaskenv"):
            click.secho(" * Tip: There are .env files present. Install python-dotenv to use them.", fg="yellow", err=True)
        return False
    data: dict[str, str | None] = {}
    if load_defaults:
        for default_name in (".flaskenv", ".env"):
            default_path = dotenv.find_dotenv(default_name, usecwd=True)
            if default_path:
                data |= dotenv.dotenv_values(default_path, encoding="utf-8")
    if path is not None and os.path.isfile(path):
        data |= dotenv.dotenv_values(path, encoding="utf-8")
    for key, value in data.items():
        if key not in os.environ and value is not None:
            os.environ[key] = value
    return bool(data)


def get_version(ctx: click.Context, param: click.Parameter | None, value: t.Any) -> None:
    """``--version``: Python, tether, the Flask API it follows, and Werkzeug."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(
        f"Python {platform.python_version()}\n"
        f"tether {importlib.metadata.version('tether')} (Flask {FLASK_VERSION} API)\n"
        f"Werkzeug {importlib.metadata.version('werkzeug')}",
        color=ctx.color,
    )
    ctx.exit()


version_option = click.Option(
    ["--version"],
    help="Show the tether version.",
    expose_value=False,
    callback=get_version,
    is_flag=True,
    is_eager=True,
)


def set_debug_from_option(ctx: click.Context, param: click.Parameter, value: bool | None) -> bool | None:
    """``--debug``/``--no-debug`` as given on the command line: into the
    environment, where the app (``get_debug_flag``) and a reloaded worker read it."""
    source = ctx.get_parameter_source(param.name or "")
    if value is None or source in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
        return None
    os.environ["FLASK_DEBUG"] = os.environ["TETHER_DEBUG"] = "1" if value else "0"
    return value


def show_server_banner(debug: bool, app_import_path: str | None) -> None:
    """The lines the development server prints before it starts."""
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        return
    if app_import_path is not None:
        click.echo(f" * Serving tether app '{app_import_path}'")
    if debug is not None:
        click.echo(f" * Debug mode: {'on' if debug else 'off'}")
