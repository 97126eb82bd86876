"""The ASGI 3 adapter: HTTP, WebSocket and lifespan scopes in, ASGI messages out.

HTTP requests are answered in one of two ways:

* a sync view (Flask's kind) runs the whole request, hooks included, in one hop
  to a bounded thread pool, inside a ``contextvars.Context`` of its own, as under
  WSGI. Its body is read lazily from the worker thread, chunk by chunk through
  the loop, so the loop never blocks and uploads stream through Werkzeug's
  parsers; a streamed sync body is iterated in the pool inside that Context.
* an async view runs on the loop. Its body is read first, without blocking, into
  a spooled buffer (``MAX_CONTENT_LENGTH`` enforced), so Flask-style
  ``request.json`` works in it unchanged; a view marked with
  :func:`tether.stream_body` instead reads it as it arrives with
  ``async for chunk in request.iter_body()``.

A streamed body is produced no faster than the client takes it (each chunk is
sent before the next is asked for), and it ends when the client disconnects or
the server starts shutting down; either way the generator is closed and the
request's teardown runs, once.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import sys
import tempfile
import typing as t
from concurrent.futures import ThreadPoolExecutor

from werkzeug.datastructures import Headers
from werkzeug.exceptions import RequestEntityTooLarge

from .ctx import RequestContext
from .wsgi import body_allowed, wsgi_headers

if t.TYPE_CHECKING:
    from .application import Application
    from .wrappers import Request, Response

__all__ = ["RequestBody", "request_from_scope", "serve_http", "stopping", "stream_body"]

Scope = dict[str, t.Any]
Message = dict[str, t.Any]
Receive = t.Callable[[], t.Awaitable[Message]]
Send = t.Callable[[Message], t.Awaitable[None]]
F = t.TypeVar("F", bound=t.Callable[..., t.Any])

_SPOOL_SIZE = 1024 * 1024
#: The buffer of every request without a body: always at its end, never written.
_NO_BODY = io.BytesIO()


def stream_body(view: F) -> F:
    """Mark an async view that reads its request body as it arrives
    (``async for chunk in request.iter_body()``) instead of having it read first."""
    view.tether_stream_body = True  # type: ignore[attr-defined]
    return view


class RequestBody:
    """The request body of an ASGI request, as the file-like ``wsgi.input``.

    Read from a worker thread, it fetches chunks through the loop; on the loop
    it serves what :meth:`load` buffered, or :meth:`chunks` as they arrive.
    Nothing else calls ``receive`` until the body is exhausted, so a chunk is
    never taken by the disconnect watcher.
    """

    __slots__ = (
        "_receive", "_loop", "_max_length", "_received", "too_large", "_pending", "_buffer", "_more", "_exhausted",
        "disconnected",
    )

    def __init__(self, receive: Receive, loop: asyncio.AbstractEventLoop, max_length: int | None) -> None:
        self._receive = receive
        self._loop = loop
        self._max_length = max_length
        self._received = 0
        self.too_large = False
        self._pending = b""
        self._buffer: t.IO[bytes] | None = None
        self._more = True
        self._exhausted: asyncio.Event | None = None
        self.disconnected = False

    def _end(self) -> None:
        self._more = False
        if self._exhausted is not None:
            self._exhausted.set()

    @property
    def unread(self) -> bool:
        """Whether some of the body may still have to be received."""
        return self._buffer is None

    def refuse(self) -> None:
        """The body is declared over the limit: it is not read, and reading it
        raises 413."""
        self.too_large = True
        self._end()

    def expect_none(self) -> None:
        """The request declares no body: nothing is read, and reads give ``b""``."""
        self._more = False
        self._buffer = _NO_BODY

    async def _next_chunk(self) -> bytes:
        if not self._more:
            return b""
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            self._end()
            return b""
        if not message.get("more_body", False):
            self._end()
        chunk: bytes = message.get("body", b"")
        self._received += len(chunk)
        if self._max_length is not None and self._received > self._max_length:
            # Werkzeug's limit would hand the view the first bytes without error:
            # refuse the whole body instead, so nothing is silently cut off.
            self.too_large = True
            self._end()
            raise RequestEntityTooLarge()
        return chunk

    async def chunks(self) -> t.AsyncIterator[bytes]:
        """The body's chunks as they arrive (or from the buffer once loaded)."""
        if self._buffer is not None:
            while chunk := self._buffer.read(65536):
                yield chunk
            return
        if self._pending:
            chunk, self._pending = self._pending, b""
            yield chunk
        while self._more:
            chunk = await self._next_chunk()
            if chunk:
                yield chunk

    async def load(self, declared: int | None) -> None:
        """Read the rest of the body into a buffer: in memory when its declared
        length is at most 1 MiB, else spooled to a file past that size.

        Past the limit it stops; reading the body then answers 413.
        """
        if self._buffer is not None:
            return
        small = declared is not None and declared <= _SPOOL_SIZE
        buffer: t.IO[bytes] = io.BytesIO() if small else tempfile.SpooledTemporaryFile(max_size=_SPOOL_SIZE)
        buffer.write(self._pending)
        self._pending = b""
        try:
            while self._more:
                buffer.write(await self._next_chunk())
        except RequestEntityTooLarge:
            pass
        buffer.seek(0)
        self._buffer = buffer

    async def wait_disconnect(self) -> None:
        """Wait for the client to go away, once the body has been read."""
        if self._more:
            self._exhausted = asyncio.Event()
            await self._exhausted.wait()
        while not self.disconnected:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True

    def read(self, size: int = -1) -> bytes:
        if self.too_large:
            raise RequestEntityTooLarge()
        if self._buffer is not None:
            return self._buffer.read(size)
        if size is None or size < 0:
            parts = [self._pending]
            self._pending = b""
            while self._more:
                parts.append(self._fetch())
            return b"".join(parts)
        while len(self._pending) < size and self._more:
            self._pending += self._fetch()
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.too_large:
            raise RequestEntityTooLarge()
        if self._buffer is not None:
            return self._buffer.readline(size)
        while b"\n" not in self._pending and self._more and (size < 0 or len(self._pending) < size):
            self._pending += self._fetch()
        end = self._pending.find(b"\n") + 1 or len(self._pending)
        if size >= 0:
            end = min(end, size)
        data, self._pending = self._pending[:end], self._pending[end:]
        return data

    def _fetch(self) -> bytes:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError(
                "The request body was read synchronously on the event loop before it was "
                "loaded. An async view marked with @tether.stream_body reads it with "
                "'async for chunk in request.iter_body()'."
            )
        return asyncio.run_coroutine_threadsafe(self._next_chunk(), self._loop).result()

    def close(self) -> None:
        if self._buffer is not None and self._buffer is not _NO_BODY:
            self._buffer.close()


_HEADER_KEYS: dict[bytes, str] = {}


def _header_key(raw_name: bytes) -> str:
    """The environ key of a header name (``b"x-token"`` -> ``HTTP_X_TOKEN``), cached:
    a handful of names recur on every request."""
    key = _HEADER_KEYS.get(raw_name)
    if key is None:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        if len(_HEADER_KEYS) < 512:
            _HEADER_KEYS[raw_name] = key
    return key


def _wsgi_string(value: str) -> str:
    return value if value.isascii() else value.encode().decode("latin-1")


_BASE_ENVIRON: dict[str, t.Any] = {
    "wsgi.input_terminated": True,
    "wsgi.errors": sys.stderr,
    "wsgi.version": (1, 0),
    "wsgi.multithread": True,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


_PROTOCOLS = {"1.0": "HTTP/1.0", "1.1": "HTTP/1.1", "2": "HTTP/2", "3": "HTTP/3"}


class Framing(t.NamedTuple):
    """How the request body is framed: its declared length, or chunked."""

    length: int | None
    chunked: bool


def request_from_scope(app: Application, scope: Scope, body: t.Any) -> tuple[Request, Framing]:
    """The request object of an HTTP or WebSocket scope, read in one pass over
    its headers. Its WSGI-style environ is built when first used, so that
    ``request.environ`` works under both protocols at no cost to the rest."""
    root_path = scope.get("root_path", "")
    path = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path):]
    server = scope.get("server") or ("localhost", 80)
    scheme = _SCHEMES.get(scope.get("scheme", "http"), "http")
    client = scope.get("client")
    pairs: list[tuple[str, str]] = []
    cookies: list[str] = []
    length: int | None = None
    chunked = False
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie":
            cookies.append(value)
            continue
        if name == "content-length":
            length = int(value) if value.isdigit() else None
        elif name == "transfer-encoding":
            chunked = True
        pairs.append((name, value))
    if cookies:
        pairs.append(("cookie", "; ".join(cookies)))
    headers = Headers.__new__(Headers)
    headers._list = pairs  # type: ignore[attr-defined]

    def environ() -> dict[str, t.Any]:
        return _environ(scope, root_path, path, server, scheme, client, body)

    request = app.request_class.from_parts(  # positional: a 13-keyword call costs 0.2 µs more
        environ,
        scope.get("method", "GET"),
        scheme,
        server,
        root_path,
        path,
        scope["query_string"],
        headers,
        client[0] if client else None,
        body if isinstance(body, RequestBody) else None,
        scope["type"] == "websocket",
        scope.get("tether.environ"),
        bool(cookies),
    )
    return request, Framing(length, chunked)


def _environ(
    scope: Scope, root_path: str, path: str, server: t.Any, scheme: str, client: t.Any, body: t.Any
) -> dict[str, t.Any]:
    version = scope.get("http_version", "1.1")
    environ = _BASE_ENVIRON.copy()
    environ["REQUEST_METHOD"] = scope.get("method", "GET")
    environ["SCRIPT_NAME"] = _wsgi_string(root_path)
    environ["PATH_INFO"] = _wsgi_string(path)
    environ["QUERY_STRING"] = scope["query_string"].decode("latin-1")
    environ["SERVER_NAME"] = server[0]
    environ["SERVER_PORT"] = str(server[1]) if server[1] is not None else "80"
    environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(version) or f"HTTP/{version}"
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body
    environ["asgi.scope"] = scope
    extra = scope.get("tether.environ")
    if extra:
        environ.update(extra)  # WSGI-only keys a test client passes
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    keys = _HEADER_KEYS
    for raw_name, raw_value in scope["headers"]:
        key = keys.get(raw_name) or _header_key(raw_name)
        value = raw_value.decode("latin-1")
        if key in environ:
            value = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ','}{value}"
        environ[key] = value
    return environ


def stopping(app: Application) -> asyncio.Event | None:
    """Set when the server serving ``app`` starts shutting down (see tether.asgi_lifespan)."""
    return app.__dict__.get("_tether_stopping")


async def serve_http(app: Application, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ASGI HTTP request with ``app``."""
    loop = asyncio.get_running_loop()
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = RequestBody(receive, loop, limit)
    request, (declared, chunked) = request_from_scope(app, scope, body)
    ctx = RequestContext(app, request=request)
    request.route(app)
    if declared == 0 or (declared is None and not chunked and scope.get("http_version", "1.1")[0] == "1"):
        body.expect_none()  # HTTP/1 frames every body with one of those headers
    elif limit is not None and declared is not None and declared > limit:
        body.refuse()
    view = app.async_view(request)
    if view is not None:
        if body.unread and not getattr(view, "tether_stream_body", False):
            await body.load(declared)
        response, finish = await app.handle_async(ctx)
        if finish is None:
            start, whole = _response_messages(response, request)
            await send(start)
            await send(whole)
            return
        try:
            await _send_response(app, response, request, send, body, _async_chunks(response.response))
        finally:
            await finish(None)
        return
    context = contextvars.copy_context()
    pool = app.executor
    response, sync_finish = await loop.run_in_executor(pool, context.run, app.handle, ctx)
    if sync_finish is None:
        await _send_response(app, response, request, send, body, None)
        return
    try:
        if body.unread:
            await body.load(declared)
        source = response.response
        if hasattr(source, "__aiter__"):
            await _send_response(app, response, request, send, body, _async_chunks(source), context)
        else:
            await _send_response(app, response, request, send, body, _threaded_chunks(loop, pool, context, iter(source)))
    finally:
        await loop.run_in_executor(pool, context.run, sync_finish, None)


async def _async_chunks(source: t.Any) -> t.AsyncIterator[bytes]:
    """The body's chunks as bytes; the source is closed here, on the loop that
    iterated it, however the stream ends."""
    try:
        if hasattr(source, "__aiter__"):
            async for chunk in source:
                yield chunk.encode() if isinstance(chunk, str) else chunk
        else:
            for chunk in source:
                yield chunk.encode() if isinstance(chunk, str) else chunk
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


async def _threaded_chunks(
    loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor, context: contextvars.Context, iterator: t.Iterator[t.Any]
) -> t.AsyncIterator[bytes]:
    """A sync body's chunks, each produced in the pool inside the request's Context.

    A chunk being produced when the stream is cancelled is waited for: the
    Context can be entered by one thread at a time, and finishing the request
    enters it next.
    """
    done = object()
    while True:
        future = loop.run_in_executor(pool, context.run, next, iterator, done)
        try:
            chunk = await asyncio.shield(future)
        except asyncio.CancelledError:
            await asyncio.wait({future})
            raise
        if chunk is done:
            return
        yield chunk.encode() if isinstance(chunk, str) else chunk


def _response_messages(response: Response, request: Request) -> tuple[Message, Message]:
    """The two messages of a response whose body is complete."""
    status = response.status_code
    start = {"type": "http.response.start", "status": status, "headers": asgi_headers(response, request, status)}
    if not body_allowed(request.method, status):
        return start, {"type": "http.response.body", "body": b""}
    data = response.response
    if not (type(data) is list and len(data) == 1 and type(data[0]) is bytes):
        data = [b"".join(c.encode() if isinstance(c, str) else c for c in data)]
    return start, {"type": "http.response.body", "body": data[0]}


async def _send_response(
    app: Application,
    response: Response,
    request: Request,
    send: Send,
    body: RequestBody,
    chunks: t.AsyncIterator[bytes] | None,
    context: contextvars.Context | None = None,
) -> None:
    if chunks is None:
        start, whole = _response_messages(response, request)
        await send(start)
        await send(whole)
        return
    status = response.status_code
    await send({"type": "http.response.start", "status": status, "headers": asgi_headers(response, request, status)})
    if not body_allowed(request.method, status):
        await send({"type": "http.response.body", "body": b""})
        return
    await stream_chunks(app, chunks, body, send, context, getattr(response, "send_timeout", None))


_NAMES: dict[str, bytes] = {}


def asgi_headers(response: Response, request: Request, status: int) -> list[tuple[bytes, bytes]]:
    """The response's headers as ASGI wants them: lowercase names, latin-1 bytes.
    A plain response (the common case) is converted in one pass, with the
    encoded names cached."""
    if status >= 200 and status not in (204, 304) and not response.autocorrect_location_header:
        headers = []
        has_length = False
        names = _NAMES
        for name, value in response.headers:
            encoded = names.get(name)
            if encoded is None:
                encoded = name.lower().encode("latin-1")
                if len(names) < 512:
                    names[name] = encoded
            if encoded in (b"location", b"content-location"):
                break
            has_length = has_length or encoded == b"content-length"
            headers.append((encoded, value.encode("latin-1")))
        else:
            if has_length or response.is_streamed:
                return headers
    headers = wsgi_headers(response, request.environ, status)
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


async def stream_chunks(
    app: Application,
    chunks: t.AsyncIterator[bytes],
    body: RequestBody,
    send: Send,
    context: contextvars.Context | None = None,
    send_timeout: float | None = None,
) -> None:
    """Send ``chunks`` as they come until they end, the client disconnects, the
    server starts shutting down, or one send takes longer than ``send_timeout``;
    the source is closed in every case. Each chunk is produced in a task of
    ``context`` (by default, the current one)."""
    loop = asyncio.get_running_loop()
    disconnect = asyncio.ensure_future(body.wait_disconnect())
    watchers = {disconnect}
    stop = stopping(app)
    if stop is not None:
        watchers.add(asyncio.ensure_future(stop.wait()))
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            pending = loop.create_task(chunks.__anext__(), context=context)  # type: ignore[arg-type]
            done, _ = await asyncio.wait({pending, *watchers}, return_when=asyncio.FIRST_COMPLETED)
            if pending not in done or not watchers.isdisjoint(done):
                if not disconnect.done():  # the server is stopping: end the response cleanly
                    await send({"type": "http.response.body", "body": b""})
                return
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                await send({"type": "http.response.body", "body": b""})
                return
            finally:
                if pending.done():
                    pending = None
            if chunk:
                try:
                    await asyncio.wait_for(send({"type": "http.response.body", "body": chunk, "more_body": True}), send_timeout)
                except TimeoutError:
                    app.logger.warning("A streamed response was ended: a send took longer than %s s.", send_timeout)
                    return
    finally:
        for watcher in watchers:
            watcher.cancel()
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await loop.create_task(chunks.aclose(), context=context)  # type: ignore[attr-defined]
