"""The path an app's requests take, compiled once, at its first request.

Flask documents request steps that extensions and subclasses replace (its
*override points*). Rather than asking at every step whether the app replaced
it, the pipeline looks the table up once: a :class:`Plan` holds, for each step,
the app's own method when it replaces it (as one call) or tether's steps.
Every request, and Flask's synchronous API (``full_dispatch_request`` & co.),
goes through it, so there is one pipeline.

Methods are fixed once setup is over (at the first request; before it, each
use compiles a fresh plan). Hooks are not: extensions append to the hook
dicts while serving (Flask-Caching's ``cached(response_hit_indication=True)``
adds an ``after_request`` function from inside a request). So each hook step
is taken only when its dict is not empty, one check per request: an app with
no ``before_request`` function runs no preprocessing step, one with no
``after_request`` function no loop over them, one with no error handler no
handler lookup (``tests/test_plan.py``).
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable

from ..contexts.ctx import RequestContext
from ..contexts.steps import NO_KWARGS, Step, Steps, call_one
from .wrappers import Request, Response

__all__ = ["OVERRIDE_POINTS", "Plan", "PlanApp", "compile_plan"]

#: Flask's documented request steps that extensions and subclasses replace.
#: When an app replaces one, its requests call it in place of tether's own step
#: (for async views too: such an app answers every request with the synchronous
#: driver, in the thread pool under ASGI, since Flask's methods are synchronous).
#: The other documented methods (``make_response``, ``log_exception``,
#: ``create_url_adapter``, ``raise_routing_exception``,
#: ``make_default_options_response``, ``should_ignore_error``, ...) are always
#: called through the app, so replacing them costs nothing more.
OVERRIDE_POINTS = (
    "full_dispatch_request",
    "preprocess_request",
    "dispatch_request",
    "process_response",
    "finalize_request",
    "handle_user_exception",
    "handle_http_exception",
    "handle_exception",
)

Ctx = RequestContext[Request]


class PlanApp(t.Protocol):
    """What a plan is compiled from: the app's replaceable methods
    (``OVERRIDE_POINTS``) and tether's own steps for each."""

    def make_response(self, rv: t.Any) -> Response: ...
    def full_dispatch_request(self) -> Response: ...
    def preprocess_request(self) -> t.Any: ...
    def dispatch_request(self) -> t.Any: ...
    def handle_user_exception(self, e: Exception) -> t.Any: ...
    def handle_http_exception(self, e: t.Any) -> t.Any: ...
    def handle_exception(self, e: Exception) -> Response: ...
    def finalize_request(self, rv: t.Any, from_error_handler: bool = False) -> Response: ...
    def process_response(self, response: Response) -> Response: ...
    def _dispatch_steps(self, ctx: Ctx) -> Steps[Response]: ...
    def _view_call(self, ctx: Ctx) -> Step: ...
    def _handle_user_exception_steps(self, e: Exception, ctx: Ctx) -> Steps[t.Any]: ...
    def _handle_http_exception_steps(self, e: t.Any, ctx: Ctx) -> Steps[t.Any]: ...
    def _handle_exception_steps(self, e: Exception, ctx: Ctx) -> Steps[Response]: ...
    def _finalize_steps(self, rv: t.Any, ctx: Ctx, from_error_handler: bool = False, prime: bool = False) -> Steps[Response]: ...


class Plan:
    """Each step of an app's requests, as a function of the app and the
    request's context (the app is an argument, not held: a plan keeps no app
    alive).

    ``replaced`` names the override points the app replaces; ``on_loop`` is
    whether its async views may run on the event loop (none replaced).
    ``preprocess`` and ``process_response`` are ``None`` where tether's own
    step runs: the pipeline takes it only when the app has hooks for it."""

    __slots__ = (
        "dispatch", "finalize", "http_exception", "on_loop", "preprocess", "process_response", "replaced",
        "unhandled", "user_exception", "view",
    )

    def __init__(self, cls: type[PlanApp], replaced: frozenset[str]) -> None:
        self.replaced = replaced
        self.on_loop = not replaced

        def pick(name: str, steps: t.Any, call: t.Any) -> t.Any:
            """The app's ``call`` where it replaces ``name``, else tether's ``steps``."""
            return call if name in replaced else steps

        self.dispatch: Callable[[t.Any, Ctx], Steps[Response]] = pick(
            "full_dispatch_request", cls._dispatch_steps, lambda app, ctx: call_one(app.full_dispatch_request)
        )
        self.preprocess: Callable[[t.Any, Ctx], Steps[t.Any]] | None = pick(
            "preprocess_request", None, lambda app, ctx: call_one(app.preprocess_request)
        )
        self.view: Callable[[t.Any, Ctx], Step] = pick(
            "dispatch_request", cls._view_call, lambda app, ctx: (app.dispatch_request, (), NO_KWARGS)
        )
        self.user_exception: Callable[[t.Any, Exception, Ctx], Steps[t.Any]] = pick(
            "handle_user_exception",
            cls._handle_user_exception_steps,
            lambda app, e, ctx: call_one(app.handle_user_exception, (e,)),
        )
        self.http_exception: Callable[[t.Any, t.Any, Ctx], Steps[t.Any]] = pick(
            "handle_http_exception",
            cls._handle_http_exception_steps,
            lambda app, e, ctx: call_one(app.handle_http_exception, (e,)),
        )
        self.unhandled: Callable[[t.Any, Exception, Ctx], Steps[Response]] = pick(
            "handle_exception", cls._handle_exception_steps, lambda app, e, ctx: _replaced_handle_exception(app, e)
        )
        self.finalize: Callable[..., Steps[Response]] = pick(
            "finalize_request", cls._finalize_steps, _replaced_finalize_request
        )
        self.process_response: Callable[[t.Any, Response, Ctx], Steps[Response]] | None = pick(
            "process_response", None, lambda app, response, ctx: call_one(app.process_response, (response,))
        )


def _replaced_handle_exception(app: t.Any, e: Exception) -> Steps[Response]:
    response = yield app.handle_exception, (e,), NO_KWARGS
    if not isinstance(response, Response):  # Flask needs a Response; a return value will do
        response = app.make_response(response)
    return response


def _replaced_finalize_request(
    app: t.Any, rv: t.Any, ctx: Ctx, from_error_handler: bool = False, prime: bool = False
) -> Steps[Response]:
    return call_one(app.finalize_request, (rv,), {"from_error_handler": True} if from_error_handler else NO_KWARGS)


def compile_plan(app: PlanApp, own: type) -> Plan:
    """The plan of ``app``, whose override points are replaced where they differ
    from those of ``own`` (tether's class that defines them)."""
    replaced = frozenset(
        name for name in OVERRIDE_POINTS if name in vars(app) or getattr(type(app), name) is not getattr(own, name)
    )
    return Plan(type(app), replaced)
