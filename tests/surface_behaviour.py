"""The behaviour half of the surface: what a Flask app's Jinja environment holds
and what Flask's signals send, described the way surface_probe.py describes names
(run under real Flask or under ``alias_flask()``; both import ``flask``)."""

from __future__ import annotations

import typing as t

from surface_probe import PRIMITIVES, describe


def _app() -> t.Any:
    import flask

    app = flask.Flask("probe")
    app.secret_key = "probe"
    app.testing = True
    return app


def jinja_surface() -> dict[str, str]:
    """Globals, filters, tests, extensions, policies, autoescape choice and what
    the template context processors add."""
    app = _app()
    env = app.jinja_env
    out = {f"jinja:globals.{k}": describe(v) for k, v in env.globals.items()}
    out.update({f"jinja:filters.{k}": "filter" for k in env.filters})
    out.update({f"jinja:tests.{k}": "test" for k in env.tests})
    out.update({f"jinja:extensions.{k}": type(v).__name__ for k, v in env.extensions.items()})
    out.update({f"jinja:policies.{k}": repr(v) if isinstance(v, PRIMITIVES) else type(v).__name__
                for k, v in env.policies.items()})
    for name in ("page.html", "page.htm", "page.xml", "page.xhtml", "page.svg", "page.txt", None):
        out[f"jinja:autoescape.{name}"] = repr(env.autoescape(name) if callable(env.autoescape) else env.autoescape)
    for option in ("auto_reload", "trim_blocks", "lstrip_blocks", "keep_trailing_newline", "optimized"):
        out[f"jinja:option.{option}"] = repr(getattr(env, option))
    out["jinja:loader"] = type(env.loader).__name__
    with app.test_request_context("/"):
        context: dict[str, t.Any] = {}
        app.update_template_context(context)
        out.update({f"jinja:context.{k}": "present" for k in context})
    with app.app_context():
        context = {}
        app.update_template_context(context)
        out.update({f"jinja:app-context.{k}": "present" for k in context})
    return out


def _kind(value: t.Any, app: t.Any) -> str:
    """A sent value as comparable text: the app, a class by name, primitives by value."""
    if value is app:
        return "app"
    if isinstance(value, BaseException):
        return f"exception {type(value).__name__}"
    if isinstance(value, PRIMITIVES):
        return repr(value)
    if isinstance(value, dict):
        return "dict " + ",".join(sorted(value))
    names = [c.__name__ for c in type(value).__mro__]
    for known in ("Response", "Template", "Request"):
        if known in names:
            return known
    return type(value).__name__


def _push_and_pop(context: t.Any) -> None:
    context.push()
    context.pop()


def signal_surface() -> dict[str, str]:
    """Each scenario's signals in order: which signal, its sender and its keyword
    arguments (names and kinds of value)."""
    import flask
    from flask import signals

    app = _app()

    @app.route("/view")
    def view() -> str:
        flask.flash("hello", "info")
        return flask.render_template_string("{{ 1 }}")

    @app.route("/error")
    def error() -> str:
        raise RuntimeError("probe")

    @app.route("/abort")
    def aborted() -> str:
        flask.abort(404)

    names = sorted(n for n in vars(signals) if isinstance(getattr(signals, n), type(signals.request_started)))
    log: list[str] = []

    def receiver(name: str) -> t.Callable[..., None]:
        def receive(sender: t.Any, **kwargs: t.Any) -> None:
            sent = ", ".join(f"{k}={_kind(v, app)}" for k, v in sorted(kwargs.items()))
            log.append(f"{name}(sender={_kind(sender, app)}{', ' if sent else ''}{sent})")
        return receive

    for name in names:
        getattr(signals, name).connect(receiver(name), weak=False)
    client = app.test_client()
    app.logger.disabled = True
    app.testing = False  # so /error is answered with a 500, as in production
    scenarios: dict[str, t.Callable[[], t.Any]] = {
        "view": lambda: client.get("/view"),
        "error": lambda: client.get("/error"),
        "abort": lambda: client.get("/abort"),
        "not-found": lambda: client.get("/nowhere"),
        "app-context": lambda: _push_and_pop(app.app_context()),
    }
    out = {}
    for scenario, action in scenarios.items():
        log.clear()
        action()
        out[f"signal:{scenario}"] = " ; ".join(log)
    return out
