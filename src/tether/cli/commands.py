"""The ``tether`` command: ``tether --app MODULE[:NAME] run|routes|shell`` and the
app's own ``app.cli`` commands."""

from __future__ import annotations

import code
import os
import sys
import typing as t

import click
import uvicorn
from werkzeug.serving import run_simple

from ..contexts.ctx import _cv_app
from ..contexts.globals import current_app
from .discovery import NoAppException, ScriptInfo, main_app
from .groups import AppGroup, pass_script_info, with_appcontext

__all__ = ["TetherGroup", "main"]


@click.command("run", short_help="Serve the app (uvicorn; --wsgi for Werkzeug's server).")
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="The interface to bind to.")
@click.option("--port", "-p", default=5000, show_default=True, type=int, help="The port to bind to.")
@click.option("--debug/--no-debug", default=None, help="Debug mode: reloader, debugger, propagated errors.")
@click.option("--reload/--no-reload", default=None, help="Restart the server when code changes (default: with --debug).")
@click.option("--wsgi", is_flag=True, help="Serve over WSGI with Werkzeug's development server (no WebSockets).")
@pass_script_info
def run_command(info: ScriptInfo, host: str, port: int, debug: bool | None, reload: bool | None, wsgi: bool) -> None:
    """Serve the app: over ASGI with uvicorn (HTTP, WebSockets, SSE), or with
    ``--wsgi`` over Werkzeug's development server."""
    app = info.load_app()
    if debug is not None:
        main_app(app).debug = debug
    if reload is None:
        reload = main_app(app).debug
    if wsgi:
        run_simple(host, port, app, use_reloader=reload, use_debugger=main_app(app).debug, threaded=True)
        return
    if reload:
        # uvicorn reloads from an import string: re-load the app as --app named it.
        os.environ["TETHER_APP"] = info.app_import_path or os.environ.get("TETHER_APP", "")
        os.environ["TETHER_RUN_DEBUG"] = "1" if main_app(app).debug else ""
        uvicorn.run("tether.cli.commands:reloaded_app", factory=True, reload=True, host=host, port=port)
    else:
        uvicorn.run(app, host=host, port=port, log_level="debug" if main_app(app).debug else "info")


def reloaded_app() -> t.Any:
    """The app for ``tether run --reload``, loaded again in uvicorn's worker process."""
    app = ScriptInfo(os.environ.get("TETHER_APP") or None).load_app()
    if os.environ.get("TETHER_RUN_DEBUG"):
        main_app(app).debug = True
    return app


@click.command("routes", short_help="Show the routes of the app.")
@with_appcontext
def routes_command() -> None:
    """List every rule with its endpoint and methods."""
    rules = sorted(current_app.url_map.iter_rules(), key=lambda rule: rule.rule)
    if not rules:
        click.echo("No routes were registered.")
        return
    ignored = {"HEAD", "OPTIONS"}
    rows = [
        (rule.endpoint, "WEBSOCKET" if rule.websocket else ", ".join(sorted((rule.methods or set()) - ignored)), rule.rule)
        for rule in rules
    ]
    headers = ("Endpoint", "Methods", "Rule")
    widths = [max(len(row[i]) for row in (*rows, headers)) for i in range(3)]

    def line(cells: t.Iterable[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    click.echo(line(headers))
    click.echo(line("-" * w for w in widths))
    for row in rows:
        click.echo(line(row))


@click.command(
    "celery",
    short_help="Run Celery with the app's Celery app (worker, beat, inspect, ...).",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@pass_script_info
def celery_command(info: ScriptInfo, argv: tuple[str, ...]) -> None:
    """Celery's own command line, given the Celery app bound to the app with
    ``tether.celery.init_celery``: ``tether --app project celery worker -l info``."""
    app = main_app(info.load_app())
    celery_app = app.extensions.get("celery")
    if celery_app is None:
        raise click.UsageError(
            f"The app {app.import_name!r} has no Celery app: bind one with tether.celery.init_celery(app)."
        )
    celery_app.start(argv=list(argv))


@click.command("shell", short_help="Run a shell in the app context.")
@with_appcontext
def shell_command() -> None:
    """An interactive Python shell with the app's context pushed and ``app`` and ``g`` defined."""
    app = current_app._get_current_object()
    banner = f"Python {sys.version} on {sys.platform}\nApp: {app.import_name}\nInstance: {app.instance_path}"
    ctx: dict[str, t.Any] = {}
    startup = os.environ.get("PYTHONSTARTUP")
    if startup and os.path.isfile(startup):
        with open(startup) as f:
            exec(compile(f.read(), startup, "exec"), ctx)
    ctx.update(app.make_shell_context())
    interactive_hook = getattr(sys, "__interactivehook__", None)
    if interactive_hook is not None:
        try:
            # readline is missing on some platforms: the shell then works without completion.
            import readline
            from rlcompleter import Completer
        except ImportError:
            pass
        else:
            readline.set_completer(Completer(ctx).complete)
        interactive_hook()
    code.interact(banner=banner, local=ctx)


def _set_app(ctx: click.Context, param: click.Option, value: str | None) -> str | None:
    if value:
        ctx.ensure_object(ScriptInfo).app_import_path = value
    return value


class TetherGroup(AppGroup):
    """The ``tether`` command: built-in commands plus those of the loaded app."""

    def __init__(self, **extra: t.Any) -> None:
        params = list(extra.pop("params", None) or ())
        params.append(
            click.Option(
                ["-A", "--app"],
                metavar="IMPORT",
                help="The app to load: 'module', 'module:name' or 'module:create_app()'. Default: $TETHER_APP.",
                is_eager=True,
                expose_value=False,
                callback=_set_app,
            )
        )
        super().__init__(params=params, **extra)
        for command in (run_command, routes_command, shell_command, celery_command):
            self.add_command(command)

    def _loaded_app(self, ctx: click.Context) -> t.Any:
        """The app, or ``None`` (said on stderr) when it cannot be loaded: the
        built-in commands still work."""
        try:
            return main_app(ctx.ensure_object(ScriptInfo).load_app())
        except NoAppException as e:
            click.secho(f"Error: {e.format_message()}\n", err=True, fg="red")
            return None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        rv = super().get_command(ctx, name)
        if rv is not None:
            return rv
        app = self._loaded_app(ctx)
        if app is None:
            return None
        current = _cv_app.get(None)
        if current is None or current.app is not app:
            # The app's commands (added with app.cli.add_command too) and their
            # parameters run in its context, as under Flask.
            ctx.with_resource(app.app_context())
        return app.cli.get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        rv = set(super().list_commands(ctx))
        app = self._loaded_app(ctx)
        if app is not None:
            rv.update(app.cli.list_commands(ctx))
        return sorted(rv)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: t.Any) -> click.Context:
        if "obj" not in extra and "obj" not in self.context_settings:
            extra["obj"] = ScriptInfo()
        return super().make_context(info_name, args, parent=parent, **extra)


cli = TetherGroup(name="tether", help="Run and manage a tether application.")


def main() -> None:
    cli.main()
