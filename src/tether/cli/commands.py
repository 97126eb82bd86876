"""The ``tether`` command: ``tether --app MODULE[:NAME] run|routes|shell|celery`` and the
app's own ``app.cli`` commands."""

from __future__ import annotations

import code
import importlib.metadata
import os
import sys
import traceback
import typing as t
from operator import itemgetter

import click

from ..contexts.ctx import _cv_app
from ..contexts.globals import current_app
from .discovery import NoAppException, ScriptInfo, flask_hint, main_app
from .environment import load_dotenv, set_debug_from_option, version_option
from .groups import AppGroup, pass_script_info, with_appcontext
from .serve import run_command

__all__ = ["TetherGroup", "cli", "main", "routes_command", "shell_command"]


@click.command("routes", short_help="Show the routes of the app.")
@click.option(
    "--sort", "-s", type=click.Choice(("endpoint", "methods", "domain", "rule", "match")), default="endpoint",
    help="Sort by this column; 'match' is the order rules are tried in.",
)
@click.option("--all-methods", is_flag=True, help="Show HEAD and OPTIONS too.")
@with_appcontext
def routes_command(sort: str, all_methods: bool) -> None:
    """List every rule with its endpoint, methods (``WEBSOCKET`` for a socket),
    subdomain or host when the app uses them, and rule."""
    rules = list(current_app.url_map.iter_rules())
    if not rules:
        click.echo("No routes were registered.")
        return
    ignored = set() if all_methods else {"HEAD", "OPTIONS"}
    host_matching = current_app.url_map.host_matching
    has_domain = any(rule.host if host_matching else rule.subdomain for rule in rules)
    headers = ["Endpoint", "Methods"]
    sorts = ["endpoint", "methods"]
    if has_domain:
        headers.append("Host" if host_matching else "Subdomain")
        sorts.append("domain")
    headers.append("Rule")
    sorts.append("rule")
    rows = []
    for rule in rules:
        row = [rule.endpoint, "WEBSOCKET" if rule.websocket else ", ".join(sorted((rule.methods or set()) - ignored))]
        if has_domain:
            row.append((rule.host if host_matching else rule.subdomain) or "")
        row.append(rule.rule)
        rows.append(row)
    if sort in sorts:
        rows.sort(key=itemgetter(sorts.index(sort)))
    widths = [max(len(row[i]) for row in (*rows, headers)) for i in range(len(headers))]
    for row in (headers, ["-" * w for w in widths], *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


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


def _set_app(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.ensure_object(ScriptInfo).app_import_path = value
    return value


def _env_file_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--env-file``: load it and the default files. Without python-dotenv a given
    file is an error; otherwise ``load_dotenv`` runs anyway, to give its tip."""
    try:
        import dotenv  # noqa: F401  # optional: python-dotenv
    except ImportError:
        if value is not None:
            raise click.BadParameter("python-dotenv must be installed to load an env file.", ctx=ctx, param=param) from None
    defaults = ctx.ensure_object(ScriptInfo).load_dotenv_defaults
    if value is not None or defaults:
        load_dotenv(value, load_defaults=defaults)
    return value


_env_file_option = click.Option(
    ["-e", "--env-file"],
    type=click.Path(exists=True, dir_okay=False),
    help="Load environment variables from this file (with python-dotenv), after .flaskenv and .env.",
    is_eager=True,
    expose_value=False,
    callback=_env_file_callback,
)
_app_option = click.Option(
    ["-A", "--app"],
    metavar="IMPORT",
    envvar=["TETHER_APP", "FLASK_APP"],
    help="The app to load: 'module', 'module:name' or 'module:create_app()'. Default: $TETHER_APP or $FLASK_APP.",
    is_eager=True,
    expose_value=False,
    callback=_set_app,
)
_debug_option = click.Option(
    ["--debug/--no-debug"],
    help="Set debug mode.",
    expose_value=False,
    callback=set_debug_from_option,
)


class TetherGroup(AppGroup):
    """The ``tether`` (and, aliased, ``flask``) command: the built-in commands
    plus those of the loaded app and of installed plugins (entry points in
    ``flask.commands``), with ``--app``, ``--debug`` and ``--env-file``."""

    def __init__(
        self,
        add_default_commands: bool = True,
        create_app: t.Callable[..., t.Any] | None = None,
        add_version_option: bool = True,
        load_dotenv: bool = True,
        set_debug_flag: bool = True,
        **extra: t.Any,
    ) -> None:
        params = list(extra.pop("params", None) or ())
        params.extend((_env_file_option, _app_option, _debug_option))
        if add_version_option:
            params.append(version_option)
        extra.setdefault("context_settings", {}).setdefault("auto_envvar_prefix", "FLASK")
        super().__init__(params=params, **extra)
        self.create_app = create_app
        self.load_dotenv = load_dotenv
        self.set_debug_flag = set_debug_flag
        if add_default_commands:
            for command in (run_command, routes_command, shell_command, celery_command):
                self.add_command(command)
        self._loaded_plugin_commands = False

    def _load_plugin_commands(self) -> None:
        if self._loaded_plugin_commands:
            return
        for entry_point in importlib.metadata.entry_points(group="flask.commands"):
            try:
                command = entry_point.load()
            except ModuleNotFoundError as e:
                if e.name != "flask" and not (e.name or "").startswith("flask."):
                    raise
                # A Flask extension's command, installed beside tether without Flask.
                click.secho(f" * Skipped the command {entry_point.name!r} ({entry_point.value}): it imports "
                            f"{e.name}, and Flask is not installed. {flask_hint()}", err=True, fg="yellow")
                continue
            self.add_command(command, entry_point.name)
        self._loaded_plugin_commands = True

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._load_plugin_commands()
        rv = super().get_command(ctx, name)
        if rv is not None:
            return rv
        try:
            app = main_app(ctx.ensure_object(ScriptInfo).load_app())
        except NoAppException as e:
            click.secho(f"Error: {e.format_message()}\n", err=True, fg="red")
            return None
        current = _cv_app.get(None)
        if current is None or current.app is not app:
            # The app's commands (added with app.cli.add_command too) and their
            # parameters run in its context, as under Flask.
            ctx.with_resource(app.app_context())
        return app.cli.get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The built-in commands, and the app's: an app that fails to load is
        reported on stderr and the built-in commands still show."""
        self._load_plugin_commands()
        rv = set(super().list_commands(ctx))
        try:
            rv.update(main_app(ctx.ensure_object(ScriptInfo).load_app()).cli.list_commands(ctx))
        except NoAppException as e:
            click.secho(f"Error: {e.format_message()}\n", err=True, fg="red")
        except Exception:
            click.secho(f"{traceback.format_exc()}\n", err=True, fg="red")
        return sorted(rv)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: t.Any) -> click.Context:
        # Werkzeug's reloader and Flask extensions look for this.
        os.environ["FLASK_RUN_FROM_CLI"] = "true"
        if "obj" not in extra and "obj" not in self.context_settings:
            extra["obj"] = ScriptInfo(
                create_app=self.create_app, set_debug_flag=self.set_debug_flag, load_dotenv_defaults=self.load_dotenv
            )
        return super().make_context(info_name, args, parent=parent, **extra)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help:
            # --help is shown at once: read --env-file and --app from the
            # environment first, so the app's commands are listed.
            _env_file_option.handle_parse_result(ctx, {}, [])
            _app_option.handle_parse_result(ctx, {}, [])
        return super().parse_args(ctx, args)


cli = TetherGroup(name="tether", help="Run and manage a tether application.")


def main() -> None:
    cli.main()
