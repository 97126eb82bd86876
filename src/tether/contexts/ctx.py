"""Application and request contexts.

A context is pushed by setting a ``ContextVar`` and popped by resetting it with
the token of that push, so pushes nest (same app or different apps) and each
thread or asyncio task has its own. Teardown runs once, when the outermost push
of a context is popped.

Popping is written once, as steps (``tether.contexts.steps``) that yield each
teardown function: :meth:`pop` drives them from sync code, :meth:`pop_async`
from a coroutine, and the request pipeline chains them into its own steps.
"""

from __future__ import annotations

import sys
import typing as t
from collections.abc import Iterable
from contextvars import ContextVar, Token
from functools import cached_property
from itertools import chain

from ..signals import appcontext_popped, appcontext_pushed, appcontext_tearing_down, request_tearing_down
from ..typing import ContextApp, RequestLike, WSGIEnvironment
from .steps import NO_KWARGS, Steps, run, run_async

if t.TYPE_CHECKING:
    from collections.abc import MutableMapping

    from werkzeug.routing import MapAdapter

__all__ = [
    "AppContext",
    "RequestContext",
    "WebSocketContext",
    "after_this_request",
    "call_all",
    "has_app_context",
    "has_request_context",
    "has_websocket_context",
    "teardown_appcontext_steps",
    "teardown_request_steps",
    "within",
]

R = t.TypeVar("R", bound=RequestLike)
T = t.TypeVar("T")
_sentinel: t.Any = object()
#: Popping steps; ``()`` when nothing is left to run.
PopSteps = t.Union[Steps[None], tuple[()]]

_cv_app: ContextVar[AppContext] = ContextVar("tether.app_ctx")
_cv_request: ContextVar[RequestContext[t.Any]] = ContextVar("tether.request_ctx")
_cv_websocket: ContextVar[t.Any] = ContextVar("tether.websocket")
#: The method and path of the last request whose context ended in this context,
#: so a later use here can say "it ended". A ContextVar, not a thread-local: code
#: a pool thread runs afterwards for someone else is not told about it; and two
#: strings, not the request, which nothing keeps once its context ended.
_cv_ended: ContextVar[tuple[str, str]] = ContextVar("tether.ended")


class _AppCtxGlobals:
    """``g``: a namespace for data that lives as long as one app context."""

    def __getattr__(self, name: str) -> t.Any:
        """Reached only for a name not set: an ``AttributeError`` naming it, as
        Flask's does (and its presence tells type checkers ``g`` holds anything)."""
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: t.Any = None) -> t.Any:
        return self.__dict__.get(name, default)

    def pop(self, name: str, default: t.Any = _sentinel) -> t.Any:
        if default is _sentinel:
            return self.__dict__.pop(name)
        return self.__dict__.pop(name, default)

    def setdefault(self, name: str, default: t.Any = None) -> t.Any:
        return self.__dict__.setdefault(name, default)

    def __contains__(self, item: str) -> bool:
        return item in self.__dict__

    def __iter__(self) -> t.Iterator[str]:
        return iter(self.__dict__)

    def __repr__(self) -> str:
        ctx = _cv_app.get(None)
        if ctx is not None:
            return f"<tether.g of {ctx.app.name!r} {self.__dict__!r}>"
        return object.__repr__(self)


def call_all(funcs: Iterable[t.Callable[..., t.Any]], arg: t.Any, app: ContextApp, what: str) -> Steps[None]:
    """Call every function even if some raise; log each error and re-raise the
    first once all have run, so one broken teardown cannot skip the others."""
    first: Exception | None = None
    for func in funcs:
        try:
            yield func, (arg,), NO_KWARGS
        except Exception as e:
            app.logger.exception("Error in %s function %r", what, func)
            if first is None:
                first = e
    if first is not None:
        raise first


def teardown_appcontext_steps(app: ContextApp, exc: BaseException | None) -> Steps[None]:
    """The ``teardown_appcontext`` functions, newest first."""
    try:
        yield from call_all(reversed(app.teardown_appcontext_funcs), exc, app, "teardown_appcontext")
    finally:
        if appcontext_tearing_down.receivers:
            appcontext_tearing_down.send(app, exc=exc)


def teardown_request_steps(
    app: ContextApp, websocket: bool, blueprints: list[str], exc: BaseException | None
) -> Steps[None]:
    """The ``teardown_request`` (or for a WebSocket, ``teardown_websocket``)
    functions of the blueprints first, then the app's, newest first."""
    funcs = app.teardown_websocket_funcs if websocket else app.teardown_request_funcs
    kind = "teardown_websocket" if websocket else "teardown_request"
    yield from call_all(chain.from_iterable(reversed(funcs.get(name, ())) for name in (*blueprints, None)), exc, app, kind)


def within(ctx: _Context, steps: Steps[T]) -> Steps[T]:
    """``steps`` with ``ctx`` pushed, popped after them with their error."""
    ctx.push()
    error: BaseException | None = None
    try:
        return (yield from steps)
    except BaseException as e:
        error = e
        raise
    finally:
        yield from ctx.pop_steps(error)


def _wrong_pop(kind: str, expected: object, actual: object) -> RuntimeError:
    return RuntimeError(
        f"Popped the wrong {kind} context: {expected!r} is being popped, but the "
        f"current one is {actual!r}. Pop contexts in the reverse order of their pushes."
    )


def _error_now(exc: BaseException | None) -> BaseException | None:
    """``exc``, or when not given the exception being handled by the caller."""
    return sys.exc_info()[1] if exc is _sentinel else exc


class _Context:
    """Pushing and popping, shared by the contexts: each defines the
    :meth:`pop_steps` that pop it, driven here from sync or async code."""

    def push(self) -> None:
        raise NotImplementedError

    def pop_steps(self, exc: BaseException | None) -> PopSteps:
        raise NotImplementedError

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        """Pop this context; the outermost pop runs its teardown functions."""
        steps = self.pop_steps(sys.exc_info()[1] if exc is _sentinel else exc)
        if steps:
            run(steps)

    async def pop_async(self, exc: BaseException | None = _sentinel) -> None:
        """:meth:`pop` from a coroutine: async teardown functions run on this loop."""
        steps = self.pop_steps(_error_now(exc))
        if steps:
            await run_async(steps)

    def __enter__(self) -> t.Self:
        self.push()
        return self

    def __exit__(self, exc_type: type | None, exc_value: BaseException | None, tb: t.Any) -> None:
        self.pop(exc_value)


class AppContext(_Context):
    """Makes ``current_app`` and ``g`` available; pushed by every request and by
    ``with app.app_context():`` in scripts, shells and tests."""

    #: The token of the outermost push, and those of pushes inside it (rare):
    #: one attribute rather than a list, for the push and pop every request makes.
    _token: Token[AppContext] | None = None
    _inner_tokens: list[Token[AppContext]] | None = None

    def __init__(self, app: ContextApp) -> None:
        self.app = app

    @cached_property
    def g(self) -> t.Any:
        """Made on first use: many requests never touch ``g``."""
        return self.app.app_ctx_globals_class()

    @cached_property
    def url_adapter(self) -> MapAdapter | None:
        """Builds URLs outside a request; needs ``SERVER_NAME``."""
        return self.app.create_url_adapter(None)

    def copy(self) -> AppContext:
        """A new context of the same app sharing this one's ``g``, to push in
        another contextvars Context (a test client keeping the request's)."""
        rv = type(self)(self.app)
        rv.__dict__["g"] = self.g
        return rv

    def push(self) -> None:
        token = _cv_app.set(self)
        if self._token is None:
            self._token = token
        elif self._inner_tokens is None:
            self._inner_tokens = [token]
        else:
            self._inner_tokens.append(token)
        if appcontext_pushed.receivers:
            appcontext_pushed.send(self.app)

    def pop_steps(self, exc: BaseException | None) -> PopSteps:
        """The steps that pop this context: the teardown functions, with the
        context reset after them. With none to run (an inner push, or no
        teardown functions), it is reset at once and there are no steps: a
        plain ``pop`` from scripts, tests and ``spawn`` costs little more
        than resetting the variable."""
        current = _cv_app.get(None)
        if current is not self:
            raise _wrong_pop("app", self, current)
        if self._inner_tokens:
            _cv_app.reset(self._inner_tokens.pop())
        elif self.app.teardown_appcontext_funcs or appcontext_tearing_down.receivers:
            return self._teardown_then_reset(exc)
        else:
            _cv_app.reset(self._token)  # type: ignore[arg-type]
            self._token = None
        if appcontext_popped.receivers:
            appcontext_popped.send(self.app)
        return ()

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        """Pop this context; the outermost pop runs the teardown functions.
        ``pop_steps`` driven synchronously, with its commonest case (the
        outermost pop, no teardown to run) taken here: scripts, tests and
        ``spawn`` push and pop app contexts often, and the call and the
        ``sys.exc_info()`` it saves make a push+pop 0.57 µs, not 0.72
        (bench/wsgi_bench.py). tests/test_contexts.py checks it against
        ``pop_steps``."""
        if (
            _cv_app.get(None) is self
            and not self._inner_tokens
            and not self.app.teardown_appcontext_funcs
            and not appcontext_tearing_down.receivers
        ):
            _cv_app.reset(self._token)  # type: ignore[arg-type]
            self._token = None
            if appcontext_popped.receivers:
                appcontext_popped.send(self.app)
            return
        super().pop(exc)

    def _teardown_then_reset(self, exc: BaseException | None) -> Steps[None]:
        try:
            yield from teardown_appcontext_steps(self.app, exc)
        except BaseException:
            self._reset_variable()
            raise
        self._reset()

    def _reset_variable(self) -> None:
        """Undo the last push."""
        if self._inner_tokens:
            _cv_app.reset(self._inner_tokens.pop())
        else:
            _cv_app.reset(self._token)  # type: ignore[arg-type]
            self._token = None

    def _reset(self) -> None:
        self._reset_variable()
        if appcontext_popped.receivers:
            appcontext_popped.send(self.app)

    def __repr__(self) -> str:
        return f"<AppContext of {self.app.name!r}>"


class RequestContext(_Context, t.Generic[R]):
    """Makes ``request`` and ``session`` available for one request.

    Pushing it pushes an app context too when none for its app is current, and
    pops that one with it; its outermost pop runs the ``teardown_request``
    functions, closes the request's files, then pops that app context. The session is opened on first use only, so a request
    that never touches ``session`` pays nothing for it.
    """

    #: Set once the response headers (and so the session cookie) are final.
    headers_final = False
    #: Whether the outermost pop always takes the teardown path, without
    #: checking for ``teardown_request`` functions (a WebSocket context's are
    #: the ``teardown_websocket`` ones).
    teardown_always = False

    def __init__(
        self,
        app: ContextApp,
        environ: WSGIEnvironment | None,
        request: R | None = None,
        session: MutableMapping[str, t.Any] | None = None,
    ) -> None:
        self.app = app
        if request is None:
            if environ is None:
                raise TypeError("A RequestContext needs the request's environ, or the request itself.")
            made: R = app.request_class(environ)
            made.match_url_later(app)
            request = made
        self.request: R = request
        #: Flashed messages, once ``get_flashed_messages`` has read them.
        self.flashes: list[tuple[str, str]] | None = None
        #: Functions added by ``after_this_request`` (Flask's name: extensions append to it).
        self._after_request_functions: list[t.Callable[[t.Any], t.Any]] = []
        self._opened_session = session
        self._tokens: list[tuple[AppContext | None, Token[RequestContext[t.Any]]]] = []

    @cached_property
    def url_adapter(self) -> MapAdapter | None:
        return self.app.create_url_adapter(self.request)

    @property
    def session(self) -> MutableMapping[str, t.Any]:
        """The request's session, opened on first use. Reading it marks it
        accessed, so the response varies by ``Cookie`` (Flask 3.1.3's rule)."""
        session = self._session
        try:
            session.accessed = True  # type: ignore[attr-defined]
        except AttributeError:  # a plain mapping from a custom session interface
            pass
        return session

    @property
    def _session(self) -> MutableMapping[str, t.Any]:
        """The session without marking it accessed (Flask's name for it): for
        saving it, and for code written for Flask that reads it."""
        session = self._opened_session
        if session is None:
            session = self._opened_session = self.app.open_request_session(self)
        return session

    @_session.setter
    def _session(self, value: MutableMapping[str, t.Any] | None) -> None:
        """Replace the request's session (Flask 3.1.3 stores it here; Flask-SocketIO
        gives each socket its own this way). ``None`` opens it again on next use."""
        self._opened_session = value

    @property
    def session_opened(self) -> bool:
        """Whether ``session`` was used (or given) in this request."""
        return self._opened_session is not None

    def copy(self) -> RequestContext[R]:
        """A new context for the same request object and session, to push elsewhere."""
        return type(self)(self.app, None, request=self.request, session=self._opened_session)

    def kept_contexts(self) -> tuple[AppContext, RequestContext[R]]:
        """The contexts a test client pushes again once the request is over
        (``with client:``). An app context this request pushed is copied, sharing
        its ``g``: its own push ends with the request. One it found current is
        pushed again itself, as on Flask, so the ``with app.app_context():`` that
        opened it around the request can still close it."""
        pushed = self._tokens[-1][0] if self._tokens else None
        app_ctx = pushed.copy() if pushed is not None else _cv_app.get()
        return app_ctx, self.copy()

    def match_request(self) -> None:
        """Match the URL now (it is otherwise matched on first use of ``request.url_rule``)."""
        self.request.match_url(self.app)

    def push(self) -> None:
        app_ctx = _cv_app.get(None)
        if app_ctx is None or app_ctx.app is not self.app:
            app_ctx = AppContext(self.app)
            app_ctx._token = _cv_app.set(app_ctx)  # AppContext.push, inlined: every request runs it
            if appcontext_pushed.receivers:
                appcontext_pushed.send(self.app)
        else:
            app_ctx = None
        self._tokens.append((app_ctx, _cv_request.set(self)))

    def pop_steps(self, exc: BaseException | None) -> PopSteps:
        """The steps that pop this context: on the outermost pop, the teardown
        functions, then those of the app context it pushed. What has nothing
        left to run happens at once."""
        current = _cv_request.get(None)
        if current is not self:
            raise _wrong_pop("request", self, current)
        if len(self._tokens) > 1:
            app_ctx = self._reset()
            return app_ctx.pop_steps(exc) if app_ctx is not None else ()
        if self.teardown_always or self.app.teardown_request_funcs or request_tearing_down.receivers:
            return self._teardown_then_pop(exc)
        return self._pop_outermost(exc)

    def _teardown_then_pop(self, exc: BaseException | None) -> Steps[None]:
        try:
            yield from self._teardown_steps(exc)
        finally:
            yield from self._pop_outermost(exc)

    def _pop_outermost(self, exc: BaseException | None) -> PopSteps:
        app_ctx = self._reset()
        request = self.request
        _cv_ended.set((request.method, request.path))
        environ = request.__dict__.get("environ")
        if environ is not None:  # the environ's back reference: no cycle left for the collector
            environ["werkzeug.request"] = None
        try:
            request.close()
        finally:
            steps = app_ctx.pop_steps(exc) if app_ctx is not None else ()
        return steps

    def _reset(self) -> AppContext | None:
        """Reset the variables of the last push; the app context it pushed, if any."""
        app_ctx, token = self._tokens.pop()
        _cv_request.reset(token)
        return app_ctx

    def _teardown_steps(self, exc: BaseException | None) -> Steps[None]:
        try:
            yield from teardown_request_steps(self.app, False, self.request.blueprints, exc)
        finally:
            if request_tearing_down.receivers:
                request_tearing_down.send(self.app, exc=exc)

    def __repr__(self) -> str:
        return f"<RequestContext {self.request!r} of {self.app.name!r}>"


class WebSocketContext(RequestContext[R]):
    """Makes ``websocket`` available for one WebSocket connection, beside
    ``request`` (its handshake), ``session`` (read only: no cookie can follow a
    handshake), ``current_app`` and ``g``. Its teardown runs the
    ``teardown_websocket`` functions."""

    headers_final = True
    teardown_always = True

    def __init__(self, app: ContextApp, request: R, websocket: t.Any) -> None:
        super().__init__(app, None, request=request)
        self.websocket = websocket
        self._websocket_tokens: list[Token[t.Any]] = []

    def push(self) -> None:
        super().push()
        self._websocket_tokens.append(_cv_websocket.set(self.websocket))

    def _reset(self) -> AppContext | None:
        _cv_websocket.reset(self._websocket_tokens.pop())
        return super()._reset()

    def _teardown_steps(self, exc: BaseException | None) -> Steps[None]:
        return teardown_request_steps(self.app, True, self.request.blueprints, exc)

    def __repr__(self) -> str:
        return f"<WebSocketContext {self.request!r} of {self.app.name!r}>"


def has_websocket_context() -> bool:
    """Whether a WebSocket context is current here."""
    return _cv_websocket.get(None) is not None


def has_app_context() -> bool:
    """Whether an app context is current here."""
    return _cv_app.get(None) is not None


def has_request_context() -> bool:
    """Whether a request context is current here."""
    return _cv_request.get(None) is not None


F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def after_this_request(f: F) -> F:
    """Run ``f`` on this request's response, before the ``after_request`` functions."""
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'after_this_request' can only be used while a request context is current, "
            "such as in a view function."
        )
    ctx._after_request_functions.append(f)
    return f
