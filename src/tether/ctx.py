"""Application and request contexts.

A context is pushed by setting a ``ContextVar`` and popped by resetting it with
the token of that push, so pushes nest (same app or different apps) and each
thread or asyncio task has its own. Teardown runs once, when the outermost push
of a context is popped.
"""

from __future__ import annotations

import sys
import typing as t
from contextvars import Token

from .globals import _cv_app, _cv_request, _cv_websocket, _ended
from .signals import appcontext_popped, appcontext_pushed, appcontext_tearing_down, request_tearing_down
from .steps import Steps, run, run_async

if t.TYPE_CHECKING:
    from werkzeug.routing import MapAdapter

    from .app import Tether
    from .sessions import SessionMixin
    from .wrappers import Request, Response

__all__ = [
    "AppContext",
    "RequestContext",
    "WebSocketContext",
    "has_websocket_context",
    "after_this_request",
    "has_app_context",
    "has_request_context",
]

_sentinel: t.Any = object()


class _AppCtxGlobals:
    """``g``: a namespace for data that lives as long as one app context."""

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


def _wrong_pop(kind: str, expected: object, actual: object) -> RuntimeError:
    return RuntimeError(
        f"Popped the wrong {kind} context: {expected!r} is being popped, but the "
        f"current one is {actual!r}. Pop contexts in the reverse order of their pushes."
    )


class AppContext:
    """Makes ``current_app`` and ``g`` available; pushed by every request and by
    ``with app.app_context():`` in scripts, shells and tests."""

    _url_adapter: MapAdapter | None = _sentinel

    g: _AppCtxGlobals

    def __init__(self, app: Tether) -> None:
        self.app = app
        self._tokens: list[Token[AppContext]] = []

    def __getattr__(self, name: str) -> t.Any:
        # ``g`` is made on first use: many requests never touch it.
        if name == "g":
            self.g = self.app.app_ctx_globals_class()
            return self.g
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def url_adapter(self) -> MapAdapter | None:
        """Builds URLs outside a request; needs ``SERVER_NAME``. Created on first use."""
        if self._url_adapter is _sentinel:
            self._url_adapter = self.app.create_url_adapter(None)
        return self._url_adapter

    def push(self) -> None:
        self._tokens.append(_cv_app.set(self))
        if appcontext_pushed.receivers:
            appcontext_pushed.send(self.app)

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        """Pop this context; on the outermost pop, run ``teardown_appcontext`` functions."""
        current = _cv_app.get(None)
        if current is not self:
            raise _wrong_pop("app", self, current)
        try:
            if len(self._tokens) == 1 and (self.app.teardown_appcontext_funcs or appcontext_tearing_down.receivers):
                run(self.app._teardown_appcontext_steps(sys.exc_info()[1] if exc is _sentinel else exc))
        finally:
            _cv_app.reset(self._tokens.pop())
        if appcontext_popped.receivers:
            appcontext_popped.send(self.app)

    async def pop_async(self, exc: BaseException | None = _sentinel) -> None:
        """:meth:`pop` from a coroutine: async teardown functions run on this loop."""
        current = _cv_app.get(None)
        if current is not self:
            raise _wrong_pop("app", self, current)
        try:
            if len(self._tokens) == 1 and (self.app.teardown_appcontext_funcs or appcontext_tearing_down.receivers):
                await run_async(self.app._teardown_appcontext_steps(sys.exc_info()[1] if exc is _sentinel else exc))
        finally:
            _cv_app.reset(self._tokens.pop())
        if appcontext_popped.receivers:
            appcontext_popped.send(self.app)

    def __enter__(self) -> AppContext:
        self.push()
        return self

    def __exit__(self, exc_type: type | None, exc_value: BaseException | None, tb: t.Any) -> None:
        self.pop(exc_value)

    def __repr__(self) -> str:
        return f"<AppContext of {self.app.name!r}>"


class RequestContext:
    """Makes ``request`` and ``session`` available for one request.

    Pushing it pushes an app context too when none for its app is current, and
    pops that one with it. The session is opened on first use only, so a request
    that never touches ``session`` pays nothing for it.
    """

    _url_adapter: MapAdapter | None = _sentinel
    #: Functions added by ``after_this_request``; a list once there is one.
    _after_request_functions: t.Sequence[t.Callable[[Response], Response]] = ()
    #: Flashed messages, once ``get_flashed_messages`` has read them.
    flashes: list[t.Any] | None = None
    #: Set once the response headers (and so the session cookie) are final.
    headers_sent = False

    def __init__(
        self,
        app: Tether,
        environ: dict[str, t.Any] | None = None,
        request: Request | None = None,
        session: SessionMixin | None = None,
    ) -> None:
        self.app = app
        if request is None:
            request = app.request_class(environ)
            request._tether_app = app  # routes the URL on first use of url_rule & co.
        self.request: Request = request
        self._session = session
        self._tokens: list[tuple[AppContext | None, Token[RequestContext]]] = []

    @property
    def url_adapter(self) -> MapAdapter | None:
        if self._url_adapter is _sentinel:
            self._url_adapter = self.app.create_url_adapter(self.request)
        return self._url_adapter

    @property
    def session(self) -> SessionMixin:
        session = self._session
        if session is None:
            session = self._session = self.app.open_request_session(self)
        return session

    @session.setter
    def session(self, value: SessionMixin) -> None:
        self._session = value

    def copy(self) -> RequestContext:
        """A new context for the same request object and session, to push elsewhere."""
        return type(self)(self.app, request=self.request, session=self._session)

    def match_request(self) -> None:
        """Match the URL now (it is otherwise matched on first use of ``request.url_rule``)."""
        self.request.__dict__.pop("_tether_app", None)
        self.request.route(self.app)

    def push(self) -> None:
        app_ctx = _cv_app.get(None)
        if app_ctx is None or app_ctx.app is not self.app:
            app_ctx = self.app.app_context()
            app_ctx._tokens.append(_cv_app.set(app_ctx))  # AppContext.push, inlined: every request runs it
            if appcontext_pushed.receivers:
                appcontext_pushed.send(self.app)
        else:
            app_ctx = None
        self._tokens.append((app_ctx, _cv_request.set(self)))

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        """Pop this context; on the outermost pop, run ``teardown_request`` functions,
        pop the app context this push opened, and close the request's files.
        (:meth:`pop_async` is the same with its helpers; this one inlines them,
        as it runs on every request.)"""
        current = _cv_request.get(None)
        if current is not self:
            raise _wrong_pop("request", self, current)
        if exc is _sentinel:
            exc = sys.exc_info()[1]
        tokens = self._tokens
        if len(tokens) > 1:
            app_ctx = self._reset()
            if app_ctx is not None:
                app_ctx.pop(exc)
            return
        request = self.request
        try:
            steps = self._teardown_steps(exc)
            if steps is not None:
                run(steps)
        finally:
            app_ctx, token = tokens.pop()
            _cv_request.reset(token)
            _ended.request = request
            try:
                if app_ctx is not None:
                    app_ctx.pop(exc)
            finally:
                if "files" in request.__dict__:
                    request.close()

    async def pop_async(self, exc: BaseException | None = _sentinel) -> None:
        """:meth:`pop` from a coroutine: async teardown functions run on this loop."""
        exc = self._check_pop(exc)
        if len(self._tokens) > 1:
            app_ctx = self._reset()
            if app_ctx is not None:
                await app_ctx.pop_async(exc)
            return
        try:
            steps = self._teardown_steps(exc)
            if steps is not None:
                await run_async(steps)
        finally:
            app_ctx = self._reset()
            _ended.request = self.request
            try:
                if app_ctx is not None:
                    await app_ctx.pop_async(exc)
            finally:
                self._close_files()

    def _teardown_steps(self, exc: BaseException | None) -> Steps[None] | None:
        """The teardown functions to run on the outermost pop, if any."""
        if self.app.teardown_request_funcs or request_tearing_down.receivers:
            return self.app._teardown_request_steps(exc)
        return None

    def _check_pop(self, exc: BaseException | None) -> BaseException | None:
        current = _cv_request.get(None)
        if current is not self:
            raise _wrong_pop("request", self, current)
        return sys.exc_info()[1] if exc is _sentinel else exc

    def _reset(self) -> AppContext | None:
        app_ctx, token = self._tokens.pop()
        _cv_request.reset(token)
        return app_ctx

    def _close_files(self) -> None:
        if "files" in self.request.__dict__:
            self.request.close()

    def __enter__(self) -> RequestContext:
        self.push()
        return self

    def __exit__(self, exc_type: type | None, exc_value: BaseException | None, tb: t.Any) -> None:
        self.pop(exc_value)

    def __repr__(self) -> str:
        return f"<RequestContext {self.request.method} {self.request.url!r} of {self.app.name!r}>"


class WebSocketContext(RequestContext):
    """Makes ``websocket`` available for one WebSocket connection, beside
    ``request`` (its handshake), ``session`` (read only: no cookie can follow a
    handshake), ``current_app`` and ``g``. Its teardown runs the
    ``teardown_websocket`` functions."""

    headers_sent = True

    def __init__(self, app: Tether, request: Request, websocket: t.Any) -> None:
        super().__init__(app, request=request)
        self.websocket = websocket
        self._websocket_tokens: list[Token[t.Any]] = []

    def push(self) -> None:
        super().push()
        self._websocket_tokens.append(_cv_websocket.set(self.websocket))

    def pop(self, exc: BaseException | None = _sentinel) -> None:
        try:
            super().pop(sys.exc_info()[1] if exc is _sentinel else exc)
        finally:
            _cv_websocket.reset(self._websocket_tokens.pop())

    async def pop_async(self, exc: BaseException | None = _sentinel) -> None:
        try:
            await super().pop_async(sys.exc_info()[1] if exc is _sentinel else exc)
        finally:
            _cv_websocket.reset(self._websocket_tokens.pop())

    def _teardown_steps(self, exc: BaseException | None) -> Steps[None] | None:
        return self.app._teardown_websocket_steps(exc)

    def __repr__(self) -> str:
        return f"<WebSocketContext {self.request.url!r} of {self.app.name!r}>"


def has_websocket_context() -> bool:
    """Whether a WebSocket context is current here."""
    return _cv_websocket.get(None) is not None


def has_app_context() -> bool:
    """Whether an app context is current here."""
    return _cv_app.get(None) is not None


def has_request_context() -> bool:
    """Whether a request context is current here."""
    return _cv_request.get(None) is not None


def after_this_request(f: t.Callable[[Response], Response]) -> t.Callable[[Response], Response]:
    """Run ``f`` on this request's response, before the ``after_request`` functions."""
    ctx = _cv_request.get(None)
    if ctx is None:
        raise RuntimeError(
            "'after_this_request' can only be used while a request context is current, "
            "such as in a view function."
        )
    if not ctx._after_request_functions:
        ctx._after_request_functions = []
    ctx._after_request_functions.append(f)  # type: ignore[attr-defined]
    return f
