"""Serving, under ASGI, an app whose WSGI entry is wrapped.

Flask's way of wrapping an app is to replace its WSGI entry: ``app.wsgi_app =
ProxyFix(app.wsgi_app)``, an APM tool's patch of ``Flask.__call__`` or
``wsgi_app``. The wrapper is WSGI code: it reads and changes the environ, wraps
``start_response``, runs code around the call and the body's iteration. So
when the entry is wrapped, an ASGI HTTP request is served as a WSGI server
would serve it: the environ is built from the scope, the whole chain runs on
a thread of the sync pool, inside a ``contextvars.Context`` of its own, and
each chunk of its body is produced there, as the client takes them
(:func:`serve_through_chain`). The chain's innermost app is tether's own WSGI
side, so views, hooks, async views (on that thread's loop) and streams all see
what the wrappers set.

A WebSocket cannot run through WSGI code; its handshake's environ passes
through the chain (:func:`websocket_scope_through_chain`), which ends at a
probe instead of the app, and the connection is served from the environ the
probe received: ``ProxyFix``'s scheme, host, client and prefix included.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
import typing as t
from http import HTTPStatus

from ..typing import Receive, Scope, Send, StartResponse, WSGIEnvironment
from .asgi_body import RequestBody
from .asgi_http import serve_http, stream_chunks
from .asgi_request import environ_from_scope
from .headers import encode_headers
from .lifecycle import ServingState
from .lifespan import start_without_lifespan
from .threaded import ThreadedIterator
from .websocket import serve_websocket

__all__ = ["PROBE", "answer_probe", "serve_indirectly", "serve_through_chain", "websocket_scope_through_chain"]

#: The environ key of a WebSocket handshake's probe: the list the environ that
#: reaches the app is put in.
PROBE = "tether.websocket_probe"


class _WSGIResponse:
    """One WSGI call, as a WSGI server runs it; every method runs in the pool."""

    __slots__ = ("status", "headers", "_written", "_result", "_iterator")

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] | None = None
        self._written: list[bytes] = []
        self._result: t.Any = None
        self._iterator: t.Iterator[t.Any] | None = None

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: t.Any = None) -> t.Callable[[bytes], None]:
        if exc_info is not None and self.headers is not None and self._iterator is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(" ", 1)[0])
        self.headers = encode_headers(headers)
        return self._written.append

    def begin(self, entry: t.Callable[..., t.Any], app: t.Any, environ: WSGIEnvironment) -> bytes | None:
        """Call the chain; the whole body, or ``None`` when it is streamed (its
        first chunk, produced to know it, is the first of the iteration)."""
        self._result = entry(app, environ, self.start_response)
        if type(self._result) is list:  # a whole body: one hop, not one per chunk
            chunks = [*self._written, *self._result]
            self._written.clear()
            return b"".join(c.encode() if isinstance(c, str) else c for c in chunks)
        self._iterator = iter(self._result)
        try:
            self._written.append(next(self))
        except StopIteration:
            return b""
        return None

    def __iter__(self) -> _WSGIResponse:
        return self

    def __next__(self) -> bytes:
        """The next chunk that is not empty."""
        if self._written:
            chunk = b"".join(self._written)
            self._written.clear()
            return chunk
        assert self._iterator is not None
        for chunk in self._iterator:
            if chunk:
                return chunk.encode() if isinstance(chunk, str) else t.cast(bytes, chunk)
        raise StopIteration

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


async def serve_through_chain(
    serving: ServingState, entry: t.Callable[..., t.Any], scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer an ASGI HTTP request by calling ``entry(app, environ, start_response)``
    (the class's ``__call__``, whatever wraps it) on a pool thread."""
    app = serving.app
    loop = asyncio.get_running_loop()
    body = RequestBody(receive, loop, None)  # the app enforces MAX_CONTENT_LENGTH, as under WSGI
    environ, (declared, chunked) = environ_from_scope(scope, body)
    if declared == 0 or (declared is None and not chunked and scope.get("http_version", "1.1")[0] == "1"):
        body.expect_none()
    response = _WSGIResponse()
    context = contextvars.copy_context()
    # One request, one thread (``sync_pool.HeldThread``): the chain, every
    # chunk and the close run on it, in order, even when a wait is cancelled.
    thread = serving.executor.hold()
    call = functools.partial(thread.run, loop, context.run)
    try:
        try:
            whole = await call(response.begin, entry, app, environ)
        except BaseException:
            await call(response.close)
            raise
        if response.headers is None:
            await call(response.close)
            raise RuntimeError("The WSGI application returned without calling start_response.")
        await send({"type": "http.response.start", "status": response.status, "headers": response.headers})
        if whole is not None:
            await send({"type": "http.response.body", "body": whole})
            await call(response.close)
            return
        if body.unread:
            await body.load(declared)
        serving.opened()
        try:
            # Each chunk produced on the request's thread; the WSGI body is
            # closed there however the stream ends (finished, client gone,
            # server stopping).
            await stream_chunks(serving, ThreadedIterator.on(thread, response, context), body, send)
        finally:
            serving.closed()
    finally:
        thread.release()


def answer_probe(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    """The chain's innermost app for a WebSocket handshake: keep the environ as
    the wrappers left it, and answer as the handshake would (101, no body)."""
    environ[PROBE].append(environ)
    start_response(f"101 {HTTPStatus.SWITCHING_PROTOCOLS.phrase}", [])
    return []


#: Environ keys that the scope made from an environ carries in its own fields.
_IN_SCOPE = frozenset((
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "CONTENT_TYPE", "CONTENT_LENGTH", "asgi.scope", PROBE,
))


async def websocket_scope_through_chain(
    serving: ServingState, entry: t.Callable[..., t.Any], scope: Scope
) -> Scope | None:
    """The handshake's scope as the WSGI chain leaves its environ; ``None`` when
    the chain answered without reaching the app (a wrapper refused it)."""
    app = serving.app
    environ = environ_from_scope(scope, io.BytesIO())[0]
    reached: list[WSGIEnvironment] = []
    environ[PROBE] = reached
    response = _WSGIResponse()
    thread = serving.executor.hold()
    call = functools.partial(thread.run, asyncio.get_running_loop(), contextvars.copy_context().run)
    try:
        begun = call(response.begin, entry, app, environ)
        closed = call(response.close)
    finally:
        thread.release()
    await begun
    await closed
    if not reached:
        return None
    seen = reached[0]
    root_path = seen.get("SCRIPT_NAME", "").encode("latin-1").decode()
    headers = [
        (key[5:].replace("_", "-").lower().encode("latin-1"), value.encode("latin-1"))
        for key, value in seen.items()
        if key.startswith("HTTP_")
    ]
    client = scope.get("client")
    extra = {k: v for k, v in seen.items() if k not in _IN_SCOPE and not k.startswith(("HTTP_", "wsgi."))}
    return {
        **scope,
        "scheme": "wss" if seen.get("wsgi.url_scheme") == "https" else "ws",
        "root_path": root_path,
        "path": root_path + seen.get("PATH_INFO", "").encode("latin-1").decode(),
        "query_string": seen.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "server": (seen.get("SERVER_NAME", "localhost"), int(seen.get("SERVER_PORT") or 80)),
        "client": (seen["REMOTE_ADDR"], client[1] if client else 0) if seen.get("REMOTE_ADDR") else client,
        "tether.environ": {**(scope.get("tether.environ") or {}), **extra},
    }


async def serve_indirectly(
    serving: ServingState, entry: t.Callable[..., t.Any] | None, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve an HTTP or WebSocket scope that cannot take the direct path: the
    app has not started (no lifespan: it starts now), or its WSGI ``entry`` is
    wrapped (``None`` when it is not)."""
    if not serving.started:
        await start_without_lifespan(serving)
    if scope["type"] == "http":
        if entry is None:
            await serve_http(serving, scope, receive, send)
        else:
            await serve_through_chain(serving, entry, scope, receive, send)
        return
    if entry is not None:
        seen = await websocket_scope_through_chain(serving, entry, scope)
        if seen is None:  # a wrapper answered the handshake itself: refuse it
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        scope = seen
    await serve_websocket(serving, scope, receive, send)
