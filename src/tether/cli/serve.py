"""``run``: serve the app with uvicorn (HTTP, WebSockets, SSE), or over WSGI with
Werkzeug's development server. Its options are Flask's ``flask run`` options,
plus ``--wsgi`` and ``--debug``."""

from __future__ import annotations

import os
import typing as t

import click
import uvicorn
from werkzeug.serving import is_running_from_reloader, run_simple
from werkzeug.utils import import_string

from ..application.helpers import get_debug_flag
from ..serving.debug import DebugTracebacks
from ..serving.lifecycle import ServingState, StartupRefused
from .discovery import ScriptInfo
from .environment import set_debug_from_option, show_server_banner
from .groups import pass_script_info

__all__ = ["CertParamType", "SeparatedPathType", "reloaded_app", "run_command"]


class CertParamType(click.ParamType):
    """``--cert``: a certificate file, ``adhoc`` (a throwaway certificate, needs
    cryptography), or the import name of an ``ssl.SSLContext``."""

    name = "path"

    def __init__(self) -> None:
        self.path_type = click.Path(exists=True, dir_okay=False, resolve_path=True)

    def convert(self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None) -> t.Any:
        try:
            import ssl  # here: a Python built without SSL still serves plain HTTP
        except ImportError:
            raise click.BadParameter('Using "--cert" requires Python to be compiled with SSL support.', ctx, param) from None
        try:
            return self.path_type(value, param, ctx)
        except click.BadParameter:
            value = click.STRING(value, param, ctx).lower()
            if value == "adhoc":
                try:
                    # optional: only ad-hoc certificates need it
                    import cryptography  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
                except ImportError:
                    raise click.BadParameter("Using ad-hoc certificates requires the cryptography library.", ctx, param) from None
                return value
            obj = import_string(value, silent=True)
            if isinstance(obj, ssl.SSLContext):
                return obj
            raise


def _validate_key(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--key`` goes with a certificate file, and only with one; the pair lands in ``cert``."""
    cert = ctx.params.get("cert")
    is_adhoc = cert == "adhoc"
    try:
        import ssl  # here: a Python built without SSL still serves plain HTTP
    except ImportError:
        is_context = False
    else:
        is_context = isinstance(cert, ssl.SSLContext)
    if value is not None:
        if is_adhoc:
            raise click.BadParameter('When "--cert" is "adhoc", "--key" is not used.', ctx, param)
        if is_context:
            raise click.BadParameter('When "--cert" is an SSLContext object, "--key" is not used.', ctx, param)
        if not cert:
            raise click.BadParameter('"--cert" must also be specified.', ctx, param)
        ctx.params["cert"] = cert, value
    elif cert and not (is_adhoc or is_context):
        raise click.BadParameter('Required when using "--cert".', ctx, param)
    return value


class SeparatedPathType(click.Path):
    """Several paths in one value, separated as in ``PATH`` (``:``, ``;`` on Windows)."""

    def convert(self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None) -> t.Any:
        return [super(SeparatedPathType, self).convert(item, param, ctx) for item in self.split_envvar_value(value)]


@click.command("run", short_help="Serve the app (uvicorn; --wsgi for Werkzeug's server).")
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="The interface to bind to.")
@click.option("--port", "-p", default=5000, show_default=True, type=int, help="The port to bind to.")
@click.option("--cert", type=CertParamType(), is_eager=True, help="Serve HTTPS with this certificate file (or 'adhoc', or an SSLContext's import name).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, resolve_path=True), callback=_validate_key, expose_value=False, help="The key file for --cert.")
@click.option("--debug/--no-debug", default=None, expose_value=False, callback=set_debug_from_option, help="Debug mode: reloader, debugger, tracebacks in the browser.")
@click.option("--reload/--no-reload", default=None, help="Restart the server when code changes (default: in debug mode).")
@click.option("--debugger/--no-debugger", default=None, help="Show tracebacks in the browser (default: in debug mode).")
@click.option("--with-threads/--without-threads", default=True, help="Werkzeug's server: a thread per request.")
@click.option("--extra-files", default=None, type=SeparatedPathType(), help="Files the reloader also watches, separated by ':'.")
@click.option("--exclude-patterns", default=None, type=SeparatedPathType(), help="fnmatch patterns the reloader ignores, separated by ':'.")
@click.option("--wsgi", is_flag=True, help="Serve over WSGI with Werkzeug's development server (no WebSockets).")
@pass_script_info
def run_command(
    info: ScriptInfo,
    host: str,
    port: int,
    cert: t.Any,
    reload: bool | None,
    debugger: bool | None,
    with_threads: bool,
    extra_files: list[str] | None,
    exclude_patterns: list[str] | None,
    wsgi: bool,
) -> None:
    """Serve the app: over ASGI with uvicorn (HTTP, WebSockets, SSE), or with
    ``--wsgi`` (or an ``adhoc``/SSLContext certificate) over Werkzeug's server."""
    app = info.load_app()  # its debug flag is set from the environment, as --debug left it
    debug = get_debug_flag()
    reload = debug if reload is None else reload
    debugger = debug if debugger is None else debugger
    show_server_banner(debug, info.app_import_path)
    if wsgi or (cert is not None and not isinstance(cert, tuple)):
        if not reload or is_running_from_reloader():  # the reloader's parent process only watches files
            _start_wsgi(app)
        run_simple(
            host, port, app, use_reloader=reload, use_debugger=debugger, threaded=with_threads,
            ssl_context=cert, extra_files=extra_files, exclude_patterns=exclude_patterns,
        )
        return
    ssl = {"ssl_certfile": cert[0], "ssl_keyfile": cert[1]} if cert else {}
    limits = _server_limits(app)
    if reload:
        # uvicorn reloads from an import string: its worker loads the app again as --app named it.
        os.environ["TETHER_APP"] = info.app_import_path or os.environ.get("TETHER_APP") or os.environ.get("FLASK_APP", "")
        os.environ["TETHER_RUN_DEBUGGER"] = "1" if debugger else ""
        uvicorn.run(
            "tether.cli.serve:reloaded_app", factory=True, reload=True, host=host, port=port,
            reload_includes=extra_files, reload_excludes=exclude_patterns, **ssl, **limits,
        )
    else:
        uvicorn.run(_served(app, debugger), host=host, port=port, log_level="debug" if debug else "info", **ssl, **limits)


def _start_wsgi(app: t.Any) -> None:
    """Start the app (and each app a dispatcher mounts) before Werkzeug's
    server listens, as a lifespan would: its settings are checked, its
    ``before_serving`` functions run and its periodic services start now,
    not at the first request. A setting that cannot work stops the command."""
    for served in _served_apps(app):
        try:
            served.serving.start_wsgi()
        except StartupRefused as e:
            raise click.ClickException(f"The app cannot start: {e}") from e


def _served_apps(app: t.Any) -> list[t.Any]:
    """The tether apps in ``app``: itself, or those a dispatcher mounts."""
    if isinstance(getattr(app, "serving", None), ServingState):
        return [app]
    mounts = getattr(app, "mounts", None)
    if not isinstance(mounts, dict):
        return []
    return [each for mounted in (app.app, *mounts.values()) for each in _served_apps(mounted)]


def _server_limits(app: t.Any) -> dict[str, t.Any]:
    """uvicorn's limits taken from the app's settings. uvicorn reads a whole
    WebSocket message before the app sees it, so only its own ``ws_max_size``
    bounds memory: it is set to ``WEBSOCKET_MAX_MESSAGE_SIZE`` (uvicorn then
    closes with 1009 as soon as a message passes it)."""
    config = getattr(app, "config", None)
    size = config.get("WEBSOCKET_MAX_MESSAGE_SIZE") if config is not None else None
    return {} if size is None else {"ws_max_size": int(size)}


def _served(app: t.Any, debugger: bool) -> t.Any:
    """The ASGI app uvicorn runs: in debug mode, errors show as a traceback page."""
    return DebugTracebacks(app) if debugger else app


def reloaded_app() -> t.Any:
    """The app for ``run --reload``, loaded again in uvicorn's worker process."""
    app = ScriptInfo(os.environ.get("TETHER_APP") or None).load_app()
    return _served(app, bool(os.environ.get("TETHER_RUN_DEBUGGER")))
