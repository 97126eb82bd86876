"""Test tools: ``app.test_client()`` and ``app.test_cli_runner()``, as in Flask."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.metadata
import json
import queue
import threading
import typing as t
import weakref
from contextlib import ExitStack, contextmanager
from urllib.parse import quote_from_bytes, urlsplit

import werkzeug.test
from click.testing import CliRunner, Result
from werkzeug.datastructures import Headers
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import ClosingIterator, get_current_url

from .application.pipeline import Application
from .application.sessions import SessionMixin
from .cli.discovery import CliApp, ScriptInfo
from .typing import ASGIApp, WSGIApp

__all__ = [
    "ASGITransport",
    "ConnectionClosed",
    "EnvironBuilder",
    "TestResponse",
    "TetherClient",
    "TetherCliRunner",
    "WebSocketRejected",
    "WebSocketSession",
]


class EnvironBuilder(werkzeug.test.EnvironBuilder):
    """Werkzeug's builder with the app's ``SERVER_NAME``, ``APPLICATION_ROOT`` and
    ``PREFERRED_URL_SCHEME`` as defaults, and JSON through the app's provider."""

    def __init__(
        self,
        app: Application,
        path: str = "/",
        base_url: str | None = None,
        subdomain: str | None = None,
        url_scheme: str | None = None,
        *args: t.Any,
        **kwargs: t.Any,
    ) -> None:
        assert not (base_url or subdomain or url_scheme) or (base_url is not None) != bool(subdomain or url_scheme), (
            'Cannot pass "subdomain" or "url_scheme" with "base_url".'
        )
        if base_url is None:
            http_host = app.config.get("SERVER_NAME") or "localhost"
            app_root = app.config["APPLICATION_ROOT"]
            if subdomain:
                http_host = f"{subdomain}.{http_host}"
            if url_scheme is None:
                url_scheme = app.config["PREFERRED_URL_SCHEME"]
            url = urlsplit(path)
            base_url = f"{url.scheme or url_scheme}://{url.netloc or http_host}/{app_root.lstrip('/')}"
            path = url.path
            if url.query:
                path = f"{path}?{url.query}"
        self.app = app
        super().__init__(path, base_url, *args, **kwargs)

    def json_dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        return self.app.json.dumps(obj, **kwargs)


_werkzeug_version = ""


def _get_werkzeug_version() -> str:
    """Werkzeug's version, for the test client's ``User-Agent``; read from the
    package metadata on first use, then kept."""
    global _werkzeug_version
    if not _werkzeug_version:
        _werkzeug_version = importlib.metadata.version("werkzeug")
    return _werkzeug_version


class TetherClient(werkzeug.test.Client):
    """Flask's test client: Werkzeug's, with a cookie jar on by default,
    ``session_transaction()``, and ``with client:`` keeping the last request's
    contexts current until the block ends.

    With ``asgi=True`` its requests go through the ASGI adapter instead of WSGI.
    Either way, :meth:`websocket` opens a WebSocket session, :meth:`lifespan`
    runs the serving lifecycle, and a ``buffered=False`` response reads an
    event stream one event at a time (``response.iter_events()``).
    """

    #: The app (``tether.Tether``): Werkzeug types it as a WSGI callable only.
    application: t.Any

    def __init__(
        self, application: Application, response_wrapper: type[t.Any] | None = None, *args: t.Any, asgi: bool = False, **kwargs: t.Any
    ) -> None:
        wrapper: type[TestResponse] = TestResponse
        if response_wrapper is not None and not issubclass(TestResponse, response_wrapper):
            wrapper = type("TestResponse", (TestResponse, response_wrapper), {})
        super().__init__(t.cast(WSGIApp, application), wrapper, *args, **kwargs)
        self.asgi = asgi
        self._transport: ASGITransport | None = None
        self.preserve_context = False
        self._new_contexts: list[t.Any] = []
        self._context_stack = ExitStack()
        self.environ_base = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": f"Werkzeug/{_get_werkzeug_version()}"}

    @contextmanager
    def session_transaction(self, *args: t.Any, **kwargs: t.Any) -> t.Iterator[SessionMixin]:
        """Open the session the next request would see, change it, and store it."""
        if self._cookies is None:
            raise TypeError("Cookies are disabled. Create a client with 'use_cookies=True'.")
        app = self.application
        ctx = app.test_request_context(*args, **kwargs)
        self._add_cookies_to_wsgi(ctx.request.environ)
        with ctx:
            sess = app.session_interface.open_session(app, ctx.request)
        if sess is None:
            raise RuntimeError("Session backend did not open a session.")
        yield sess
        resp = app.response_class()
        if app.session_interface.is_null_session(sess):
            return
        with ctx:
            app.session_interface.save_session(app, sess, resp)
        self._update_cookies_from_response(
            ctx.request.host.partition(":")[0], ctx.request.path, resp.headers.getlist("Set-Cookie")
        )

    def _copy_environ(self, other: dict[str, t.Any]) -> dict[str, t.Any]:
        out = {**self.environ_base, **other}
        if self.preserve_context:
            out["werkzeug.debug.preserve_context"] = self._new_contexts.append
        return out

    def _request_from_builder_args(self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> werkzeug.test.Request:
        kwargs["environ_base"] = self._copy_environ(kwargs.get("environ_base", {}))
        builder = EnvironBuilder(self.application, *args, **kwargs)
        try:
            return builder.get_request()
        finally:
            builder.close()

    def open(
        self, *args: t.Any, buffered: bool = False, follow_redirects: bool = False, **kwargs: t.Any
    ) -> TestResponse:
        if args and isinstance(args[0], (werkzeug.test.EnvironBuilder, dict, werkzeug.wrappers.Request)):
            if isinstance(args[0], werkzeug.test.EnvironBuilder):
                builder = args[0]
                builder.environ_base = self._copy_environ(dict(builder.environ_base or {}))
                request = builder.get_request()
            elif isinstance(args[0], dict):
                request = EnvironBuilder.from_environ(args[0], app=self.application, environ_base=self._copy_environ({})).get_request()
            else:
                request = args[0]
                request.environ = self._copy_environ(request.environ)
        else:
            request = self._request_from_builder_args(args, kwargs)
        self._context_stack.close()
        response = t.cast(TestResponse, super().open(request, buffered=buffered, follow_redirects=follow_redirects))
        response.json_module = self.application.json
        for preserved in self._new_contexts:
            self._context_stack.enter_context(preserved)
        self._new_contexts.clear()
        return response

    @property
    def transport(self) -> ASGITransport:
        """The loop thread that serves this client's ASGI requests."""
        if self._transport is None:
            self._transport = ASGITransport(t.cast(ASGIApp, self.application))
        return self._transport

    def run_wsgi_app(self, environ: dict[str, t.Any], buffered: bool = False) -> t.Any:
        if not self.asgi:
            return super().run_wsgi_app(environ, buffered)
        self._add_cookies_to_wsgi(environ)
        rv = werkzeug.test.run_wsgi_app(self.transport.http, environ, buffered=buffered)
        url = urlsplit(get_current_url(environ))
        self._update_cookies_from_response(url.hostname or "localhost", url.path, rv[2].getlist("Set-Cookie"))
        return rv

    @contextmanager
    def lifespan(self) -> t.Iterator[None]:
        """Run the ASGI lifespan: ``before_serving`` on entry, ``after_serving`` on exit."""
        session = LifespanSession(self.transport)
        session.start()
        try:
            yield
        finally:
            session.stop()

    def websocket(self, *args: t.Any, subprotocols: t.Sequence[str] = (), **kwargs: t.Any) -> WebSocketSession:
        """Open a WebSocket session to the app; use it as a context manager.

        Takes the arguments of ``get`` (path, ``headers``, ``query_string``...);
        raises :class:`WebSocketRejected` if the app refuses the handshake.
        """
        kwargs["environ_base"] = self._copy_environ(kwargs.get("environ_base", {}))
        builder = EnvironBuilder(self.application, *args, **kwargs)
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        if self._cookies is not None:
            self._add_cookies_to_wsgi(environ)
        scope = scope_from_environ(environ, "websocket")
        scope["subprotocols"] = list(subprotocols)
        return WebSocketSession(self.transport, scope)

    def __enter__(self) -> TetherClient:
        if self.preserve_context:
            raise RuntimeError("Cannot nest client invocations")
        self.preserve_context = True
        return self

    def __exit__(self, exc_type: type | None, exc_value: BaseException | None, tb: t.Any) -> None:
        self.preserve_context = False
        self._context_stack.close()
        self.close()

    def close(self) -> None:
        """End the ASGI loop thread, if one was started: a test that keeps using
        the client afterwards gets a new one on its next ASGI request."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class TetherCliRunner(CliRunner):
    """Invokes the app's CLI commands with the app loaded, for tests."""

    def __init__(self, app: CliApp, **kwargs: t.Any) -> None:
        self.app = app
        super().__init__(**kwargs)

    # Flask's signature: ``cli`` defaults to the app's own commands.
    def invoke(self, cli: t.Any = None, args: t.Any = None, **kwargs: t.Any) -> Result:  # type: ignore[override]
        if cli is None:
            cli = self.app.cli
        if "obj" not in kwargs:
            kwargs["obj"] = ScriptInfo(create_app=lambda: self.app)
        return super().invoke(cli, args, **kwargs)


class TestResponse(werkzeug.test.TestResponse):
    """Werkzeug's test response, plus reading Server-Sent Events one by one."""

    def iter_events(self) -> t.Iterator[dict[str, str]]:
        """The events of a ``text/event-stream`` body as they arrive (request it
        with ``buffered=False``): dicts of their fields, ``data`` lines joined.
        Werkzeug's client returns a response once its first chunk arrived, so
        the stream must send something (an event, or a keep-alive) by then."""
        pending = ""
        for chunk in self.response:
            pending += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in pending:
                block, pending = pending.split("\n\n", 1)
                event: dict[str, str] = {}
                for line in block.split("\n"):
                    if not line or line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    event[name] = f"{event[name]}\n{value}" if name in event else value
                if event:
                    yield event


class WebSocketRejected(Exception):
    """The app refused the WebSocket handshake; ``status``, ``headers`` and ``body`` are its answer."""

    def __init__(self, status: int, body: bytes, headers: Headers | None = None) -> None:
        super().__init__(f"WebSocket rejected with {status}: {body[:200]!r}")
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else Headers()


class ASGITransport:
    """Runs the app's ASGI side on an event loop in a background thread, so that
    synchronous tests drive HTTP, WebSockets and the lifespan through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The loops of transports closed or collected before end first, so that
        # an app one of them started has shut down before this one starts it.
        _wait_for_ending_loops()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=_serve_loop, args=(self.loop,), name="tether-test-loop", daemon=True)
        self._thread.start()
        # The thread holds the loop, never the transport: a transport nobody uses
        # any more is collected, and this ends its thread (see _end_loop).
        self._end = weakref.finalize(self, _end_loop, self.loop, self._thread, threading.get_ident())

    def close(self) -> None:
        """End the loop thread and wait for it; tasks still running are cancelled."""
        self._end()
        _wait_for_ending_loops()

    def call(self, coro: t.Coroutine[t.Any, t.Any, t.Any], timeout: float | None = None) -> t.Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _run(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> concurrent.futures.Future[t.Any]:
        async def serve() -> None:
            await self.app(scope, receive, send)

        return asyncio.run_coroutine_threadsafe(serve(), self.loop)

    def http(self, environ: dict[str, t.Any], start_response: t.Callable[..., t.Any]) -> t.Iterable[bytes]:
        """A WSGI-shaped entry that answers through the app's ASGI side, so that
        Werkzeug's client (cookies, redirects, buffering) drives it unchanged."""
        scope = scope_from_environ(environ, "http")
        body = environ["wsgi.input"].read()
        outbox: queue.Queue[dict[str, t.Any]] = queue.Queue()
        gone = asyncio.Event()
        sent_body = False

        async def receive() -> dict[str, t.Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, t.Any]) -> None:
            outbox.put(message)

        future = self._run(scope, receive, send)
        start = _next_message(outbox, future)
        if start is None:
            raise RuntimeError("The app returned without starting a response.")
        status = f"{start['status']} {HTTP_STATUS_CODES.get(start['status'], 'UNKNOWN').upper()}"
        start_response(status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ())])

        def chunks() -> t.Iterator[bytes]:
            while True:
                message = _next_message(outbox, future)
                if message is None:
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    future.result(30)  # the request is done when the app returns
                    return

        def close() -> None:
            self.loop.call_soon_threadsafe(gone.set)
            future.result(30)

        return ClosingIterator(chunks(), close)


def _serve_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The loop thread: run until stopped, then cancel what is left and close."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


#: The threads of loops asked to stop and not yet waited for.
_ending: list[threading.Thread] = []


#: The longest a collection in the client's own thread waits for its loop.
_COLLECTION_WAIT = 5.0


def _end_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread, owner: int) -> None:
    """Ask the loop to stop. In the thread that made the client, wait a while
    for its end, so that the app it started has shut down before the test goes
    on; only a while, since a collection runs wherever the collector starts,
    inside other code's locks too, which the loop's shutdown may need. The next
    transport made, or a ``close()``, waits for the rest
    (:func:`_wait_for_ending_loops`)."""
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:  # closed already
        return
    _ending.append(thread)
    if threading.get_ident() == owner and thread is not threading.current_thread():
        thread.join(_COLLECTION_WAIT)


def _wait_for_ending_loops() -> None:
    """Wait until the loops asked to stop have ended (not from one of them)."""
    while _ending:
        try:
            thread = _ending.pop()
        except IndexError:  # another thread took the last one
            return
        if thread is not threading.current_thread():
            thread.join()


def _next_message(outbox: queue.Queue[dict[str, t.Any]], future: concurrent.futures.Future[t.Any]) -> dict[str, t.Any] | None:
    """The app's next message; ``None`` once it returned; its exception if it raised."""
    while True:
        try:
            return outbox.get(timeout=0.05)
        except queue.Empty:
            if future.done():
                future.result()
                try:
                    return outbox.get_nowait()
                except queue.Empty:
                    return None


def scope_from_environ(environ: dict[str, t.Any], kind: str) -> dict[str, t.Any]:
    """The ASGI scope of a request built with Werkzeug's ``EnvironBuilder``."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").lower().encode("latin-1"), value.encode("latin-1")))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").lower().encode("latin-1"), value.encode("latin-1")))
    # As uvicorn: the path decoded as UTF-8 with bad bytes replaced, raw_path as sent.
    raw_root = environ.get("SCRIPT_NAME", "").encode("latin-1")
    raw_path = raw_root + environ.get("PATH_INFO", "").encode("latin-1")
    root_path = raw_root.decode(errors="replace")
    path = raw_path.decode(errors="replace")[len(root_path):]
    scheme = environ.get("wsgi.url_scheme", "http")
    scope: dict[str, t.Any] = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": environ["REQUEST_METHOD"],
        "scheme": {"http": "ws", "https": "wss"}[scheme] if kind == "websocket" else scheme,
        "path": root_path + path,
        "raw_path": quote_from_bytes(raw_path, safe="/:@!$&'()*+,;=~").encode("ascii"),
        "root_path": root_path,
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "server": (environ.get("SERVER_NAME", "localhost"), int(environ.get("SERVER_PORT", 80))),
        "client": (environ.get("REMOTE_ADDR", "127.0.0.1"), 50000),
        "extensions": {"websocket.http.response": {}} if kind == "websocket" else {},
    }
    preserve = environ.get("werkzeug.debug.preserve_context")
    if preserve is not None:
        scope["tether.environ"] = {"werkzeug.debug.preserve_context": preserve}
    return scope


class LifespanSession:
    """Drives the ASGI lifespan of the app for :meth:`TetherClient.lifespan`."""

    def __init__(self, transport: ASGITransport) -> None:
        self._transport = transport
        self._inbox: asyncio.Queue[dict[str, t.Any]] | None = None
        self._outbox: queue.Queue[dict[str, t.Any]] = queue.Queue()
        self._future: concurrent.futures.Future[t.Any] | None = None

    def _exchange(self, message_type: str) -> None:
        assert self._inbox is not None and self._future is not None
        self._transport.loop.call_soon_threadsafe(self._inbox.put_nowait, {"type": message_type})
        reply = _next_message(self._outbox, self._future)
        if reply is None or reply["type"].endswith(".failed"):
            raise RuntimeError(f"Lifespan {message_type} failed: {reply and reply.get('message')}")

    def start(self) -> None:
        self._inbox = self._transport.call(_make_queue())

        async def send(message: dict[str, t.Any]) -> None:
            self._outbox.put(message)

        self._future = self._transport._run({"type": "lifespan", "asgi": {"version": "3.0"}}, self._inbox.get, send)
        self._exchange("lifespan.startup")

    def stop(self) -> None:
        self._exchange("lifespan.shutdown")
        assert self._future is not None
        self._future.result(30)


async def _make_queue() -> asyncio.Queue[dict[str, t.Any]]:
    return asyncio.Queue()


class WebSocketSession:
    """A test WebSocket connection: ``send``, ``receive``, ``send_json``,
    ``receive_json``, ``close``; ``accepted_subprotocol`` and ``close_code``."""

    def __init__(self, transport: ASGITransport, scope: dict[str, t.Any]) -> None:
        self._transport = transport
        self._scope = scope
        self._inbox: asyncio.Queue[dict[str, t.Any]] | None = None
        self._outbox: queue.Queue[dict[str, t.Any]] = queue.Queue()
        self._future: concurrent.futures.Future[t.Any] | None = None
        self.accepted_subprotocol: str | None = None
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.close_code: int | None = None

    def __enter__(self) -> WebSocketSession:
        self._inbox = self._transport.call(_make_queue())
        self._inbox.put_nowait({"type": "websocket.connect"})

        async def send(message: dict[str, t.Any]) -> None:
            self._outbox.put(message)

        self._future = self._transport._run(self._scope, self._inbox.get, send)
        first = self._next()
        if first is None or first["type"] == "websocket.close":
            raise WebSocketRejected(403, b"")
        if first["type"] == "websocket.http.response.start":
            body = b""
            while (part := self._next()) is not None:
                body += part.get("body", b"")
                if not part.get("more_body"):
                    break
            headers = Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in first["headers"]])
            raise WebSocketRejected(first["status"], body, headers)
        self.accepted_subprotocol = first.get("subprotocol")
        self.accept_headers = list(first.get("headers") or ())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.close_code is None:
            self.close(1000)
        assert self._future is not None
        self._future.result(30)

    def _next(self) -> dict[str, t.Any] | None:
        assert self._future is not None
        return _next_message(self._outbox, self._future)

    def _put(self, message: dict[str, t.Any]) -> None:
        assert self._inbox is not None
        self._transport.loop.call_soon_threadsafe(self._inbox.put_nowait, message)

    def send(self, data: str | bytes) -> None:
        self._put({"type": "websocket.receive", "text" if isinstance(data, str) else "bytes": data})

    def send_json(self, data: t.Any) -> None:
        self.send(json.dumps(data))

    def receive(self) -> str | bytes:
        """The app's next message; raises WebSocketDisconnect-like RuntimeError if it closed."""
        message = self._next()
        if message is None or message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000) if message else 1006
            raise ConnectionClosed(self.close_code)
        text = message.get("text")
        return text if text is not None else message.get("bytes", b"")

    def receive_json(self) -> t.Any:
        return json.loads(self.receive())

    def close(self, code: int = 1000) -> None:
        """Close from the client side (the app sees ``websocket.disconnect``)."""
        self.close_code = code
        self._put({"type": "websocket.disconnect", "code": code})


class ConnectionClosed(Exception):
    """The app closed the test WebSocket; ``code`` is its close code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"WebSocket closed by the app with code {code}")
        self.code = code
