"""``alias_flask()``: make ``import flask`` (and its submodules) give tether, so
code and tests written against Flask run unchanged."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import typing as t

from .application import FLASK_VERSION

__all__ = ["FLASK_VERSION", "alias_flask", "main"]


#: flask module name -> the tether modules providing it (their names merged).
MODULES: dict[str, tuple[str, ...]] = {
    "flask": ("tether",),
    # Extensions import Flask's own imports from flask.app (Rule, Request, ...).
    "flask.app": ("tether.app", "tether", "werkzeug.routing", "werkzeug.exceptions", "werkzeug.datastructures"),
    "flask.blueprints": ("tether.application.blueprints", "tether.app"),
    "flask.cli": (
        "tether.cli.commands", "tether.cli.discovery", "tether.cli.groups", "tether.cli.environment", "tether.cli.serve",
    ),
    "flask.config": ("tether.application.config",),
    "flask.ctx": ("tether.contexts.ctx",),
    "flask.debughelpers": ("tether.application.debughelpers",),
    "flask.globals": ("tether.contexts.globals",),
    "flask.helpers": ("tether.application.helpers",),
    "flask.json": ("tether.application.json",),
    "flask.json.provider": ("tether.application.json.provider",),
    "flask.json.tag": ("tether.application.json.tag",),
    "flask.logging": ("tether.application.log",),
    "flask.sessions": ("tether.application.sessions",),
    "flask.signals": ("tether.signals",),
    "flask.sansio": ("tether.application",),
    "flask.sansio.app": ("tether.application.base", "tether.application.pipeline"),
    "flask.sansio.blueprints": ("tether.application.blueprints", "tether.app"),
    "flask.sansio.scaffold": ("tether.application.scaffold",),
    "flask.templating": ("tether.application.templating",),
    "flask.testing": ("tether.testing",),
    "flask.typing": ("tether.application.hints",),
    "flask.views": ("tether.application.views",),
    "flask.wrappers": ("tether.application.wrappers",),
}

#: flask modules with submodules.
PACKAGES = ("flask", "flask.json", "flask.sansio")

#: Flask names that tether spells differently.
NAMES = {
    "flask": {"Flask": "Tether"},
    "flask.app": {"Flask": "Tether"},
    "flask.testing": {"FlaskClient": "TetherClient", "FlaskCliRunner": "TetherCliRunner"},
    "flask.cli": {"FlaskGroup": "TetherGroup", "_set_debug": "set_debug_from_option"},
    "flask.sansio.app": {"App": "Application"},
    "flask.sansio.scaffold": {"_endpoint_from_view_func": "endpoint_from_view_func"},
    "flask.templating": {"_default_template_ctx_processor": "default_template_ctx_processor"},
}


#: Names Flask's modules re-export from elsewhere, which code imports from them
#: (``from flask.app import App``, ``from flask.wrappers import RequestBase``):
#: found here when the module's own tether counterpart lacks them.
REEXPORTS = {
    "App": "tether.application.pipeline:Application",
    "AppContext": "tether.contexts.ctx:AppContext",
    "BaseEnvironment": "jinja2:Environment",
    "BaseRequest": "werkzeug.wrappers:Request",
    "BaseResponse": "werkzeug.wrappers:Response",
    "Blueprint": "tether.app:Blueprint",
    "Client": "werkzeug.test:Client",
    "ContextVar": "contextvars:ContextVar",
    "Environment": "tether.application.templating:Environment",
    "F": "tether.application.base:F",
    "HTTPException": "werkzeug.exceptions:HTTPException",
    "ModuleType": "types:ModuleType",
    "RequestBase": "werkzeug.wrappers:Request",
    "ResponseBase": "werkzeug.wrappers:Response",
    "SansioBlueprint": "tether.application.blueprints:BlueprintBase",
    "SecureCookieSessionInterface": "tether.application.sessions:SecureCookieSessionInterface",
    "SessionInterface": "tether.application.sessions:SessionInterface",
    "T_shell_context_processor": "tether.application.base:F",
    "T_teardown": "tether.application.base:F",
    "T_template_filter": "tether.application.base:F",
    "T_template_global": "tether.application.base:F",
    "T_template_test": "tether.application.base:F",
    "TracebackType": "types:TracebackType",
    "before_render_template": "tether.signals:before_render_template",
    "cache": "functools:cache",
    "chain": "itertools:chain",
    "copy": "copy:copy",
    "copy_current_request_context": "tether.contexts.propagation:copy_current_request_context",
    "current_app": "tether.contexts.globals:current_app",
    "datetime": "datetime:datetime",
    "is_running_from_reloader": "werkzeug.serving:is_running_from_reloader",
    "iscoroutinefunction": "inspect:iscoroutinefunction",
    "message_flashed": "tether.signals:message_flashed",
    "request": "tether.contexts.globals:request",
    "request_ctx": "tether.contexts.globals:request_ctx",
    "send_from_directory": "tether.application.helpers:send_from_directory",
    "stream_with_context": "tether.contexts.propagation:stream_with_context",
    "template_rendered": "tether.signals:template_rendered",
    "timedelta": "datetime:timedelta",
    "timezone": "datetime:timezone",
    "update_wrapper": "functools:update_wrapper",
}


#: What each Flask module imports at its top, or defines privately there (modules,
#: and the helpers extensions patch or import from there: ``mock.patch("flask.helpers.werkzeug.utils...")``,
#: ``from flask.cli import click``, ``flask.app._cv_app``), as ``module`` or
#: ``module:attribute``; set on the aliased module when it is made.
IMPORTS: dict[str, dict[str, str]] = {
    "flask": {"annotations": "__future__:annotations", "t": "typing"},
    "flask.app": {
        "cabc": "collections.abc", "cli": "flask.cli", "click": "click", "ft": "flask.typing", "os": "os",
        "sys": "sys", "t": "typing", "weakref": "weakref", "_cv_app": "tether.contexts.ctx:_cv_app",
        "_cv_request": "tether.contexts.ctx:_cv_request", "_url_quote": "urllib.parse:quote",
        "get_host": "werkzeug.wsgi:get_host", "_make_timedelta": "tether.application.base:_make_timedelta",
        "_sentinel": "tether.contexts.ctx:_sentinel",
    },
    "flask.blueprints": {"os": "os", "t": "typing", "_sentinel": "tether.contexts.ctx:_sentinel"},
    "flask.cli": {
        "ast": "ast", "cabc": "collections.abc", "click": "click", "importlib": "importlib", "inspect": "inspect",
        "os": "os", "platform": "platform", "re": "re", "sys": "sys", "t": "typing", "traceback": "traceback",
    },
    "flask.config": {"errno": "errno", "json": "json", "os": "os", "t": "typing", "types": "types"},
    "flask.ctx": {"contextvars": "contextvars", "ft": "flask.typing", "sys": "sys", "t": "typing"},
    "flask.debughelpers": {"t": "typing"},
    "flask.globals": {"t": "typing"},
    "flask.helpers": {
        "importlib": "importlib", "os": "os", "sys": "sys", "t": "typing", "werkzeug": "werkzeug",
        "_wz_abort": "werkzeug.exceptions:abort", "_wz_redirect": "werkzeug.utils:redirect",
    },
    "flask.json": {"_json": "json", "t": "typing"},
    "flask.json.provider": {
        "dataclasses": "dataclasses", "decimal": "decimal", "json": "json", "t": "typing", "uuid": "uuid",
        "weakref": "weakref",
    },
    "flask.json.tag": {"t": "typing"},
    "flask.logging": {"logging": "logging", "sys": "sys", "t": "typing"},
    "flask.sessions": {"c": "collections.abc", "hashlib": "hashlib", "t": "typing"},
    "flask.templating": {"t": "typing"},
    "flask.testing": {"importlib": "importlib", "t": "typing", "werkzeug": "werkzeug"},
    "flask.typing": {"cabc": "collections.abc", "t": "typing"},
    "flask.views": {"ft": "flask.typing", "t": "typing"},
    "flask.wrappers": {"json": "flask.json", "t": "typing"},
}


def _imported(target: str) -> t.Any:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


_MISSING = (
    "tether has no equivalent of '{}' yet, so code using it cannot run on tether through alias_flask(). "
    "Use tether's own API for it, or keep Flask for this code."
)


def _missing_module(flask_name: str) -> ModuleNotFoundError:
    """A flask submodule tether lacks: ModuleNotFoundError, as for any missing
    module, so ``from flask import x`` and ``try: import ...`` behave as on Flask."""
    return ModuleNotFoundError(_MISSING.format(flask_name), name=flask_name)


def _missing_attribute(flask_name: str, attribute: str) -> AttributeError:
    """A name a flask module lacks under the alias: AttributeError, the protocol
    ``hasattr`` and ``getattr(module, name, default)`` rely on (extensions probe
    ``hasattr(flask, ...)`` at import)."""
    return AttributeError(_MISSING.format(f"{flask_name}.{attribute}"), name=attribute)


def _alias_module(flask_name: str) -> types.ModuleType:
    targets = [importlib.import_module(name) for name in MODULES[flask_name]]
    module = types.ModuleType(flask_name, targets[0].__doc__)
    for target in targets:
        # Submodules stay out: flask.cli must be the aliased module, not tether.cli.
        module.__dict__.update(
            {k: v for k, v in target.__dict__.items() if not k.startswith("__") and not isinstance(v, types.ModuleType)}
        )
    module.__dict__.update({name: _imported(target) for name, target in IMPORTS.get(flask_name, {}).items()})
    for flask_attr, tether_attr in NAMES.get(flask_name, {}).items():
        module.__dict__[flask_attr] = module.__dict__[tether_attr]
    module.__file__ = getattr(targets[0], "__file__", None)
    if flask_name in PACKAGES:
        module.__path__ = []  # a package, so its submodules import
    if flask_name == "flask":
        module.__version__ = FLASK_VERSION  # type: ignore[attr-defined]

    def __getattr__(name: str) -> t.Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if f"{flask_name}.{name}" in MODULES:  # flask.templating without importing it
            return importlib.import_module(f"{flask_name}.{name}")
        if name in REEXPORTS:
            module_name, _, attribute = REEXPORTS[name].partition(":")
            return getattr(importlib.import_module(module_name), attribute)
        raise _missing_attribute(flask_name, name)

    module.__dict__["__getattr__"] = __getattr__
    return module


class _FlaskFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``flask`` and ``flask.*`` from tether; a submodule tether lacks fails
    with a ModuleNotFoundError that names it."""

    def find_spec(self, fullname: str, path: t.Any = None, target: t.Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "flask" and not fullname.startswith("flask."):
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname in PACKAGES)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if spec.name not in MODULES:
            raise _missing_module(spec.name)
        return _alias_module(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        parent, _, child = module.__name__.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)


_finder = _FlaskFinder()


def alias_flask() -> None:
    """After this, ``import flask`` gives tether; ``flask.Flask`` is ``tether.Tether``.

    Modules of a real Flask imported earlier are dropped from ``sys.modules`` so
    later imports see tether; objects already imported from them are unchanged.
    """
    for name in [n for n in sys.modules if n == "flask" or n.startswith("flask.")]:
        del sys.modules[name]
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    importlib.import_module("flask")


def main() -> None:
    """The ``flask`` command on tether: ``python -m tether.compat --app hello run``,
    or a ``flask`` script on ``PATH`` that calls this."""
    alias_flask()
    from flask.cli import main as flask_main  # the aliased module: tether's command line

    flask_main()


if __name__ == "__main__":
    main()
