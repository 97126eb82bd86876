"""The rule of the compiled request path (``tether.application.plan``), checked
across the whole table of hooks and override points: an app that uses one
behaves as on Flask (under WSGI and ASGI), and an app that does not use it
runs none of its machinery."""

from __future__ import annotations

import typing as t

import flask
import pytest

import tether
from tether.application.errors import ErrorHandling
from tether.application.pipeline import Application
from tether.application.plan import OVERRIDE_POINTS
from tether.application.responses import ResponseMaking
from tether.application.sessions import SecureCookieSessionInterface
from tether.contexts.ctx import RequestContext


class Failure(Exception):
    """Raised by the ``/fail`` views."""


Trace = list[str]
Installer = t.Callable[[t.Any, t.Any, t.Any, Trace], None]


def _before(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.before_request
    def before() -> t.Any:
        trace.append("before")
        return "stopped early" if api.request.args.get("stop") else None


def _url_values(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.url_value_preprocessor
    def values(endpoint: str | None, view_args: dict[str, t.Any] | None) -> None:
        trace.append(f"url_values {endpoint}")


def _after(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.after_request
    def after(response: t.Any) -> t.Any:
        trace.append("after")
        response.headers["X-After"] = "1"
        return response


def _after_this(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.before_request
    def before() -> None:
        @api.after_this_request
        def once(response: t.Any) -> t.Any:
            trace.append("after_this_request")
            return response


def _teardown(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.teardown_request
    def teardown(exc: BaseException | None) -> None:
        trace.append(f"teardown {type(exc).__name__}")


def _handler_by_class(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.errorhandler(Failure)
    def handle(e: Exception) -> t.Any:
        trace.append("handler Failure")
        return "handled", 418


def _handler_by_code(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.errorhandler(404)
    def not_found(e: Exception) -> t.Any:
        trace.append("handler 404")
        return "not here", 404

    @app.errorhandler(500)
    def server_error(e: Exception) -> t.Any:
        trace.append("handler 500")
        return "broken", 500


def _blueprint_hooks(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @bp.before_request
    def before() -> None:
        trace.append("bp before")

    @bp.after_request
    def after(response: t.Any) -> t.Any:
        trace.append("bp after")
        return response

    @bp.errorhandler(Failure)
    def handle(e: Exception) -> t.Any:
        trace.append("bp handler")
        return "bp handled", 409


def _session(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
    @app.before_request
    def remember() -> None:
        api.session["seen"] = api.request.path


def _replacing(name: str) -> Installer:
    """An installer that makes the app's class replace override point ``name``."""

    def install(api: t.Any, app: t.Any, bp: t.Any, trace: Trace) -> None:
        base = type(app)

        def replaced(self: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            trace.append(name)
            return getattr(base, name)(self, *args, **kwargs)

        app.__class__ = type(f"Replacing_{name}", (base,), {name: replaced})

    return install


#: Each feature of the table, and the machinery of tether that runs it (the
#: functions that must not run in an app without it).
FEATURES: dict[str, tuple[Installer, tuple[str, ...]]] = {
    "before_request": (_before, ("_preprocess_steps",)),
    "url_value_preprocessor": (_url_values, ("_preprocess_steps",)),
    "after_request": (_after, ("_process_response_steps",)),
    "after_this_request": (_after_this, ("_preprocess_steps", "_process_response_steps")),
    "teardown_request": (_teardown, ("_teardown_steps",)),
    "errorhandler by class": (_handler_by_class, ("_lookup_error_handler",)),
    "errorhandler by code": (_handler_by_code, ("_lookup_error_handler",)),
    "blueprint hooks": (_blueprint_hooks, ("_preprocess_steps", "_process_response_steps", "_lookup_error_handler")),
    "session": (_session, ("_preprocess_steps", "open_session")),
    **{name: (_replacing(name), (name,)) for name in OVERRIDE_POINTS},
    # Flask's preprocess_request and process_response, which the replacements
    # call, run the hook loops.
    "preprocess_request": (_replacing("preprocess_request"), ("preprocess_request", "_preprocess_steps")),
    "process_response": (_replacing("process_response"), ("process_response", "_process_response_steps")),
}
#: Where each piece of machinery is defined.
MACHINERY = {
    "_preprocess_steps": Application,
    "_process_response_steps": ResponseMaking,
    "_teardown_steps": RequestContext,
    "_lookup_error_handler": ErrorHandling,
    "open_session": SecureCookieSessionInterface,
    **{name: Application for name in OVERRIDE_POINTS},
}
PATHS = ("/ok", "/ok?stop=1", "/fail", "/missing", "/bp/ok", "/bp/fail", "/async")


def build(api: t.Any, feature: str | None, trace: Trace) -> t.Any:
    """An app on ``api`` (``flask`` or ``tether``) with ``feature`` alone."""
    cls = api.Flask if api is flask else api.Tether
    app = cls("plan")
    app.config["SECRET_KEY"] = "k"
    app.logger.disabled = True  # /fail logs its error when nothing handles it
    bp = api.Blueprint("bp", __name__, url_prefix="/bp")

    @app.route("/ok")
    @bp.route("/ok")
    def ok() -> str:
        return f"ok {api.request.endpoint}"

    @app.route("/fail")
    @bp.route("/fail")
    def fail() -> str:
        raise Failure("failed")

    @app.route("/async")
    async def async_view() -> str:
        return "async"

    if feature is not None:
        FEATURES[feature][0](api, app, bp, trace)
    app.register_blueprint(bp)
    return app


def answers(app: t.Any, trace: Trace, **client: t.Any) -> list[tuple[t.Any, ...]]:
    """What each of :data:`PATHS` answers, and what the app's hooks saw."""
    result = []
    for path in PATHS:
        trace.clear()
        response = app.test_client(**client).get(path)
        seen = (response.status_code, response.get_data(as_text=True), response.headers.get("X-After"))
        result.append((path, *seen, "Set-Cookie" in response.headers, tuple(trace)))
    return result


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_an_app_using_a_step_behaves_as_on_flask(feature: str, protocol: str) -> None:
    trace: Trace = []
    expected = answers(build(flask, feature, trace), trace)
    client = {"asgi": True} if protocol == "asgi" else {}
    assert answers(build(tether, feature, trace), trace, **client) == expected


@pytest.mark.parametrize("feature", [None, *sorted(FEATURES)])
def test_an_app_runs_only_the_machinery_of_what_it_uses(
    feature: str | None, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: set[str] = set()
    for name, owner in MACHINERY.items():
        original = getattr(owner, name)

        def spy(*args: t.Any, __name: str = name, __original: t.Any = original, **kwargs: t.Any) -> t.Any:
            ran.add(__name)
            return __original(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    trace: Trace = []
    answers(build(tether, feature, trace), trace, **({"asgi": True} if protocol == "asgi" else {}))
    used = set(FEATURES[feature][1]) if feature is not None else set()
    assert ran == used


def test_hooks_added_while_serving_run_as_on_flask(protocol: str) -> None:
    # Flask-Caching's cached(response_hit_indication=True) appends an
    # after_request function from inside a request; other extensions add hooks
    # or handlers to the dicts once the app serves.
    def run(api: t.Any, **client: t.Any) -> list[tuple[int, str, str | None]]:
        app = build(api, None, [])
        app.logger.disabled = True
        seen = [app.test_client(**client).get(path) for path in ("/ok", "/fail")]

        def stamp(response: t.Any) -> t.Any:
            response.headers["X-After"] = "late"
            return response

        app.after_request_funcs.setdefault(None, []).append(stamp)
        app.before_request_funcs.setdefault(None, []).append(lambda: "stopped" if api.request.args.get("stop") else None)
        app.error_handler_spec[None][None][Failure] = lambda e: ("late handler", 418)
        seen += [app.test_client(**client).get(path) for path in ("/ok", "/ok?stop=1", "/fail")]
        return [(r.status_code, r.get_data(as_text=True), r.headers.get("X-After")) for r in seen]

    expected = run(flask)
    assert expected[2:] == [(200, "ok ok", "late"), (200, "stopped", "late"), (418, "late handler", "late")]
    assert run(tether, **({"asgi": True} if protocol == "asgi" else {})) == expected
