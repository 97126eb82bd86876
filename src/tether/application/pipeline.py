"""The request pipeline: request context in, response out, teardown after.

It is written once, as steps (``tether.contexts.steps``): generators that yield
every user function they call (hooks, views, error handlers, teardowns).
:meth:`Application.handle` drives them from sync code (WSGI, sync views under
ASGI), :meth:`Application.handle_async` on the event loop, and Flask's
synchronous API (``full_dispatch_request``, ``dispatch_request`` ...) over the
same generators. Which override points the app replaces is looked up once, at
the first request, into a :class:`~tether.application.plan.Plan`: there is one
pipeline, and a hook step runs only for an app that has such hooks.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing as t
from collections.abc import Awaitable, Callable

from ..contexts.ctx import (
    AppContext,
    RequestContext,
    _cv_request,
    _sentinel,
    teardown_appcontext_steps,
    teardown_request_steps,
)
from ..contexts.steps import NO_KWARGS, Step, Steps, call_one, run, run_async
from ..signals import request_started, request_tearing_down
from .errors import ErrorHandling
from .header_rules import InvalidResponseHeader, header_problem
from .plan import OVERRIDE_POINTS, Plan, compile_plan
from .werkzeug_private import header_items
from .wrappers import Request, Response

__all__ = ["OVERRIDE_POINTS", "Application", "Finish"]

Ctx = RequestContext[Request]
#: The steps that end a streamed response: close its body, pop its context.
Finish = Callable[[BaseException | None], Steps[None]]


class Application(ErrorHandling):
    """A web application, independent of the protocol that serves it: adapters
    build a ``RequestContext`` and send the ``Response`` that :meth:`handle`
    or :meth:`handle_async` returns."""

    @functools.cached_property
    def _async_views(self) -> dict[Callable[..., t.Any], bool]:
        """Whether each view function is async, asked once per function."""
        return {}

    def app_context(self) -> AppContext:
        """A context in which ``current_app`` and ``g`` work: ``with app.app_context():``."""
        return AppContext(self)

    def request_context(self, environ: dict[str, t.Any]) -> Ctx:
        """The context of the request ``environ`` describes."""
        return RequestContext(self, environ)

    def handle(
        self, ctx: Ctx, answered: Callable[[Response], None] | None = None
    ) -> tuple[Response, Finish | None]:
        """Answer the request of ``ctx`` synchronously.

        Returns the response and ``None`` once the context is popped; or, for a
        streamed body, the response with the context still pushed and the
        :data:`Finish` steps that close the body and pop the context. The
        adapter produces the body and runs ``finish(error)`` in the contextvars
        Context this ran in, so the body sees ``request`` and ``g`` and
        teardown runs after it. ``answered(response)``, if given, is called
        while the context is still pushed, before any teardown: where a WSGI
        adapter starts the response, as Flask does (middleware that reads
        ``request`` in its ``start_response`` relies on it).
        """
        return run(self.answer_steps(ctx, answered=answered))

    def handle_async(self, ctx: Ctx) -> Awaitable[tuple[Response, Finish | None]]:
        """:meth:`handle` on the event loop, for a request whose view is async."""
        return run_async(self.answer_steps(ctx))

    def answer_steps(
        self, ctx: Ctx, keep_streams: bool = True, answered: Callable[[Response], None] | None = None
    ) -> Steps[tuple[Response, Finish | None]]:
        """The whole request: push ``ctx``, dispatch it, make an unhandled error a
        response, pop ``ctx``. With ``keep_streams``, a streamed response keeps
        ``ctx`` pushed and comes with the :data:`Finish` steps that pop it.
        ``answered`` is called with the response before ``ctx`` is popped."""
        error: Exception | None = None
        plan = self._plan
        if plan is None:
            plan = self._first_request()
        ctx.push()
        try:
            try:
                response = yield from plan.dispatch(self, ctx)
            except Exception as e:
                error = e
                response = yield from plan.unhandled(self, e, ctx)
            problem = header_problem(header_items(response.headers))
            if problem is not None:
                response, error = yield from self._refuse_headers_steps(response, ctx, problem)
        except BaseException as e:
            yield from ctx.pop_steps(e)
            raise
        preserve = ctx.request.environ_value("werkzeug.debug.preserve_context")
        if preserve is not None:  # a test client keeps the contexts
            for kept in ctx.kept_contexts():
                preserve(kept)
        if error is not None and self.should_ignore_error(error):
            error = None
        if answered is not None:
            try:
                answered(response)
            except BaseException as e:
                yield from ctx.pop_steps(e)
                raise
        if keep_streams and type(response.response) is not list and response.is_streamed:
            return response, functools.partial(self._finish_steps, ctx, response, error)
        yield from ctx.pop_steps(error)
        return response, None

    def _refuse_headers_steps(self, response: Response, ctx: Ctx, problem: str) -> Steps[tuple[Response, Exception]]:
        """A response with a header that is not valid HTTP (``problem`` says
        why) becomes the app's error: a logged 500 (raised when propagating, as
        in tests); a 500 whose own headers are bad too is replaced by a bare one."""
        response.close()
        try:
            raise InvalidResponseHeader(problem)
        except InvalidResponseHeader as e:  # handled where it is current, so that it is logged with it
            error = e
            response = yield from self._current_plan().unhandled(self, e, ctx)
        if header_problem(response.headers) is not None:
            response.close()
            response = self.response_class("Internal Server Error", 500, content_type="text/plain; charset=utf-8")
        return response, error

    def _finish_steps(
        self, ctx: Ctx, response: Response, error: BaseException | None, body_error: BaseException | None
    ) -> Steps[None]:
        try:
            response.close()
        finally:
            yield from ctx.pop_steps(body_error or error)

    def _first_request(self) -> Plan:
        """Setup is over: compile the plan every request follows from now on."""
        self._got_first_request = True
        plan = self._plan = compile_plan(self, Application)
        self._custom_url_adapter = (
            "create_url_adapter" in self.__dict__ or type(self).create_url_adapter is not Application.create_url_adapter
        )
        return plan

    def _current_plan(self) -> Plan:
        plan = self._plan
        return plan if plan is not None else compile_plan(self, Application)

    def async_view(self, request: Request) -> Callable[..., t.Any] | None:
        """The view that will answer ``request``, if it is a coroutine function
        (and the app replaces none of Flask's override points)."""
        plan = self._plan
        if plan is None:
            plan = self._first_request()
        if not plan.on_loop:
            return None
        request.match_url_pending()
        rule = request.url_rule
        if rule is None or request.routing_exception is not None:
            return None
        view = self.view_functions.get(rule.endpoint)
        if view is None:
            return None
        known = self._async_views.get(view)
        if known is None:
            known = self._async_views[view] = _is_coroutine_function(view)
        return view if known else None

    def _dispatch_steps(self, ctx: Ctx) -> Steps[Response]:
        """Flask's ``full_dispatch_request``: preprocessing, the view, an
        exception's handler, then the response finalized; each step the app's
        own where its plan says so."""
        plan = self._plan or self._current_plan()
        ctx.request.match_url_pending()
        try:
            if request_started.receivers:
                request_started.send(self)
            rv = None
            if plan.preprocess is not None:
                rv = yield from plan.preprocess(self, ctx)
            elif self.url_value_preprocessors or self.before_request_funcs:
                rv = yield from self._preprocess_steps(ctx)
            if rv is None:
                rv = yield plan.view(self, ctx)
        except Exception as e:
            rv = yield from plan.user_exception(self, e, ctx)
            return (yield from plan.finalize(self, rv, ctx))
        return (yield from plan.finalize(self, rv, ctx, False, True))

    def _preprocess_steps(self, ctx: Ctx) -> Steps[t.Any]:
        request = ctx.request
        if request.url_rule is None or "." not in request.url_rule.endpoint:
            names: t.Iterable[str | None] = (None,)
        else:
            names = (None, *reversed(request.blueprints))
        for name in names:
            for url_func in self.url_value_preprocessors.get(name, ()):
                yield url_func, (request.endpoint, request.view_args), NO_KWARGS
        for name in names:
            for before_func in self.before_request_funcs.get(name, ()):
                rv = yield before_func, (), NO_KWARGS
                if rv is not None:
                    return rv
        return None

    def _view_call(self, ctx: Ctx) -> Step:
        """The call that answers the matched rule: its view with the URL's
        arguments, or the automatic ``OPTIONS`` answer."""
        request = ctx.request
        if request.routing_exception is not None:
            self.raise_routing_exception(request)
        rule = request.url_rule
        assert rule is not None, "a request without a routing exception has a rule"
        if request.method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
            return self.make_default_options_response, (), NO_KWARGS
        return self.view_functions[rule.endpoint], (), request.view_args or NO_KWARGS

    def websocket_steps(self, ctx: Ctx) -> Steps[t.Any]:
        """A WebSocket's handling: ``before_websocket`` functions, the handler,
        ``after_websocket`` functions. A value returned before the handler ran, or
        by a handler that never accepted, is the HTTP response that rejects it."""
        request = ctx.request
        if request.routing_exception is not None:
            self.raise_routing_exception(request)
        for name in (None, *reversed(request.blueprints)):
            for before in self.before_websocket_funcs.get(name, ()):
                rv = yield before, (), NO_KWARGS
                if rv is not None:
                    return rv
        rv = yield self._view_call(ctx)
        for name in (*request.blueprints, None):
            for after in reversed(self.after_websocket_funcs.get(name, ())):
                yield after, (), NO_KWARGS
        return rv

    def rejection_steps(self, ctx: Ctx, rv: t.Any) -> Steps[Response]:
        """The HTTP response that refuses a WebSocket handshake, made from ``rv``
        and finished as every response is (``process_response``: the
        ``after_request`` functions, the session), with ``ctx`` pushed."""
        return (yield from self._processed_steps(self.make_response(rv), ctx))

    # Flask's synchronous API over the same steps

    def full_dispatch_request(self) -> Response:
        """Run the before hooks, the view and the after hooks of the current request."""
        return run(self._dispatch_steps(_cv_request.get()))

    def preprocess_request(self) -> t.Any:
        """Run URL value preprocessors and ``before_request`` functions; the first
        non-``None`` return value stops the request and becomes the response."""
        return run(self._preprocess_steps(_cv_request.get()))

    def dispatch_request(self) -> t.Any:
        """Call the view of the matched rule with the URL's arguments."""
        return run(call_one(*self._view_call(_cv_request.get())))

    def do_teardown_request(self, exc: BaseException | None = _sentinel) -> None:
        """Run ``teardown_request`` functions (blueprints' first), newest first,
        with ``exc``: by default the exception being handled, if any, as in Flask."""
        if exc is _sentinel:
            exc = sys.exc_info()[1]
        ctx = _cv_request.get(None)
        try:
            run(teardown_request_steps(self, False, ctx.request.blueprints if ctx is not None else [], exc))
        finally:
            if request_tearing_down.receivers:
                request_tearing_down.send(self, exc=exc)

    def do_teardown_appcontext(self, exc: BaseException | None = _sentinel) -> None:
        """Run ``teardown_appcontext`` functions, newest first, with ``exc``: by
        default the exception being handled, if any, as in Flask."""
        if exc is _sentinel:
            exc = sys.exc_info()[1]
        run(teardown_appcontext_steps(self, exc))


def _is_coroutine_function(func: Callable[..., t.Any]) -> bool:
    """An ``async def`` function, or an object whose class has an async ``__call__``."""
    if inspect.iscoroutinefunction(func):
        return True
    call = type(func).__dict__.get("__call__")
    return not inspect.isfunction(func) and inspect.iscoroutinefunction(call)

