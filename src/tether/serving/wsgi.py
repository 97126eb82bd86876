"""The WSGI adapter: environ in, status, headers and body out.

Each request runs in a ``contextvars.Context`` of its own. A streamed body is
returned as a :class:`ContextBody` that produces every chunk, and runs the
request's teardown, inside that Context; the server's thread never has a
tether context left current on it, whichever thread iterates, closes or
garbage-collects the body.
"""

from __future__ import annotations

import contextvars
import threading
import typing as t

from ..application.pipeline import Finish
from ..application.werkzeug_private import has_close_callbacks
from ..application.wrappers import Response
from ..contexts.steps import run, run_coroutine
from ..typing import StartResponse, WSGIEnvironment
from .headers import body_allowed, wsgi_headers
from .lifecycle import ServingState

__all__ = ["ContextBody", "serve"]


def serve(serving: ServingState, environ: WSGIEnvironment, start_response: StartResponse) -> t.Iterable[bytes]:
    """Answer one WSGI request with the app of ``serving``."""
    if not serving.started:
        serving.start_wsgi()
    context = contextvars.copy_context()
    return context.run(_serve, serving, context, environ, start_response)


def _serve(
    serving: ServingState, context: contextvars.Context, environ: WSGIEnvironment, start_response: StartResponse
) -> t.Iterable[bytes]:
    app: t.Any = serving._app()  # the ServingState.app property, without its call

    def answered(response: Response) -> None:
        start_response(response.status, wsgi_headers(response, environ, response.status_code))

    response, finish = app.handle(app.request_context(environ), answered)
    status = response.status_code
    if not body_allowed(environ["REQUEST_METHOD"], status):
        if finish is not None:
            run(finish(None))
            return []
        return _ClosingBody([], response.close) if has_close_callbacks(response) else []
    if finish is not None:
        return ContextBody(context, response.response, finish, serving.wsgi_stopping)
    body: t.Any = response.response
    if not response.direct_passthrough and not (type(body) is list and len(body) == 1 and type(body[0]) is bytes):
        body = [chunk.encode() if isinstance(chunk, str) else chunk for chunk in body]
    return _ClosingBody(body, response.close) if has_close_callbacks(response) else body


class _ClosingBody:
    """A buffered body whose response has ``call_on_close`` callbacks to run."""

    __slots__ = ("_body", "close")

    def __init__(self, body: t.Iterable[bytes], close: t.Callable[[], None]) -> None:
        self._body = body
        self.close = close

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self._body)


class ContextBody:
    """A response body whose chunks are produced inside ``context``.

    The ``finish(error)`` steps run inside ``context`` exactly once: when the body is
    exhausted (every chunk has been handed to the server), when the server
    closes it early (the client went away), when ``stopping`` is set (the
    server is shutting down: the body ends before its next chunk), or when
    the garbage collector finalizes it on any thread.
    """

    __slots__ = ("_context", "_iterator", "_finish", "_stopping", "_lock", "_done", "_error")

    def __init__(
        self,
        context: contextvars.Context,
        iterable: t.Iterable[bytes | str],
        finish: Finish,
        stopping: threading.Event | None = None,
    ) -> None:
        self._context = context
        self._iterator = _sync_iterator(iterable)
        self._finish = finish
        self._stopping = stopping
        self._lock = threading.Lock()
        self._done = False
        self._error: BaseException | None = None

    def __iter__(self) -> ContextBody:
        return self

    def __next__(self) -> bytes:
        if self._stopping is not None and self._stopping.is_set():  # the server is shutting down
            self.close()
            raise StopIteration
        try:
            chunk = self._context.run(next, self._iterator)
        except StopIteration:
            self.close()
            raise
        except BaseException as e:
            self._error = e
            raise
        return chunk.encode() if isinstance(chunk, str) else chunk

    def close(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._context.run(self._close_and_finish)

    def _close_and_finish(self) -> None:
        # The iterator first (an async body's wrapper closes it on its own loop),
        # then the request.
        close = getattr(self._iterator, "close", None)
        try:
            if close is not None:
                close()
        finally:
            run(self._finish(self._error))

    def __del__(self) -> None:
        if not self._done:
            self.close()


def _sync_iterator(iterable: t.Iterable[t.Any] | t.AsyncIterable[t.Any]) -> t.Iterator[t.Any]:
    """An async body, served synchronously: each chunk is awaited on this
    thread's event loop (inside the request's Context, as every chunk is)."""
    if not isinstance(iterable, t.AsyncIterable):
        return iter(iterable)
    iterator = aiter(iterable)

    def chunks() -> t.Iterator[t.Any]:
        try:
            while True:
                try:
                    yield run_coroutine(anext(iterator))
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                run_coroutine(aclose())

    return chunks()
