"""The ASGI WebSocket adapter: the ``websocket`` object and serving a connection.

An async handler runs on the loop; a sync handler runs in the app's thread
pool, where ``websocket.receive()`` and ``send()`` block that thread (not the
loop) until the loop has done the I/O. The same methods return awaitables when
called on the loop, so one object serves both kinds of handler.

The connection ends when the handler returns (closed with 1000), raises
(rejected with 500 before accepting, closed with 1011 after), the client goes
away (``receive`` and ``send`` raise :class:`WebSocketDisconnect`), or the server
shuts down (an async handler is cancelled). In every case the
``teardown_websocket`` functions run once.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import io
import typing as t
from collections.abc import AsyncIterable, AsyncIterator

from werkzeug.exceptions import Forbidden, HTTPException

from ..application.pipeline import Application
from ..application.wrappers import Request, Response
from ..contexts.ctx import WebSocketContext, within
from ..contexts.steps import Steps, run, run_async
from ..typing import Message, Receive, Scope, Send
from .asgi_request import request_from_scope
from .direct import DirectSender, encoded_once
from .headers import asgi_headers, encode_headers
from .lifecycle import ServingState, SourceGuard
from .origins import origin_problem
from .race import NextItem, Outcome, RelayedItems, is_pushable, is_relayable
from .threaded import ThreadedIterator
from .throttled_log import warn_at_most_every_minute
from .tracing import ConnectionTrace, tracing_for

__all__ = ["WebSocket", "WebSocketDisconnect", "serve_websocket"]


#: How a connection's handling ended: the error its handler raised, and the
#: response that rejects the handshake if it never accepted.
Ended = tuple[Exception | None, Response | None]
class WebSocketDisconnect(Exception):
    """The client closed the connection or went away."""

    def __init__(self, code: int = 1000, reason: str = "") -> None:
        super().__init__(f"WebSocket closed with code {code}{': ' + reason if reason else ''}")
        self.code = code
        self.reason = reason


class WebSocket:
    """One WebSocket connection, as the ``websocket`` proxy shows it.

    ``path``, ``args``, ``headers`` and ``cookies`` are the handshake's;
    ``subprotocols`` are those the client offered.
    """

    #: The connection's spans, where tracing is on (``tether.serving.tracing``).
    _trace: ConnectionTrace | None = None

    def __init__(
        self,
        serving: ServingState,
        request: Request,
        scope: Scope,
        receive: Receive,
        send: Send,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._serving = serving
        self._app = serving.app
        self._scope = scope
        self._receive_message = receive
        self._send_message = send
        self._loop = loop
        self.subprotocols: list[str] = list(scope.get("subprotocols") or ())
        self.accepted = False
        self.closed = False
        self.request = request

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def args(self) -> t.Any:
        return self.request.args

    @property
    def headers(self) -> t.Any:
        return self.request.headers

    @property
    def cookies(self) -> t.Any:
        return self.request.cookies

    def _io(self, coro: t.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
        """An awaitable on the loop; elsewhere (a sync handler's thread), the result."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return coro
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _send(self, message: Message) -> None:
        if self.closed:
            raise WebSocketDisconnect(1006, "the connection is closed")
        try:
            await self._send_message(message)
        except OSError as e:  # ASGI servers raise an OSError subclass once the client is gone
            self.closed = True
            raise WebSocketDisconnect(1006, "the client went away") from e

    def accept(self, subprotocol: str | None = None, headers: t.Mapping[str, str] | None = None) -> t.Any:
        """Accept the connection (done on the first ``send``/``receive`` otherwise)."""
        return self._io(self._accept(subprotocol, headers))

    async def _accept(self, subprotocol: str | None = None, headers: t.Mapping[str, str] | None = None) -> None:
        if self.accepted:
            return
        message: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = encode_headers(headers.items())
        await self._send(message)
        self.accepted = True

    def receive(self) -> t.Any:
        """The next message, ``str`` or ``bytes``; raises WebSocketDisconnect when closed."""
        return self._io(self._receive())

    async def _receive(self) -> str | bytes:
        if not self.accepted:
            await self._accept()
        if self.closed:
            raise WebSocketDisconnect(1006, "the connection is closed")
        message = await self._receive_message()
        if message["type"] == "websocket.disconnect":
            self.closed = True
            code = message.get("code", 1000)
            if self._trace is not None:
                self._trace.closed(code)
            raise WebSocketDisconnect(code, message.get("reason") or "")
        text = message.get("text")
        data: str | bytes = text if text is not None else message.get("bytes", b"")
        if self._trace is not None:
            self._trace.received(data)
        limit = self._app.config["WEBSOCKET_MAX_MESSAGE_SIZE"]
        if limit is not None and len(data) * (4 if text is not None else 1) > limit:
            size = len(data.encode() if isinstance(data, str) else data)
            if size > limit:
                await self._refuse_message(
                    1009, f"a message of {size} bytes is over WEBSOCKET_MAX_MESSAGE_SIZE ({limit})"
                )
        return data

    async def _refuse_message(self, code: int, reason: str) -> t.NoReturn:
        """Close the connection for a message the client should not have sent:
        logged as a warning (at most once a minute), the handler sees the close."""
        warn_at_most_every_minute(self._app.logger, f"WebSocket {self.path} closed with {code}: {reason}.")
        await self._close(code, reason[:120])
        raise WebSocketDisconnect(code, reason)

    def send(self, data: str | bytes) -> t.Any:
        """Send a text (``str``) or binary (``bytes``) message."""
        return self._io(self._send_data(data))

    async def _send_data(self, data: str | bytes) -> None:
        if not self.accepted:
            await self._accept()
        key = "text" if isinstance(data, str) else "bytes"
        if self._trace is None:
            await self._send({"type": "websocket.send", key: data})
            return
        with self._trace.sending(data):
            await self._send({"type": "websocket.send", key: data})

    def receive_json(self) -> t.Any:
        """The next message, decoded as JSON."""
        return self._io(self._receive_json())

    async def _receive_json(self) -> t.Any:
        data = await self._receive()
        try:
            return self._app.json.loads(data)
        except ValueError as e:
            await self._refuse_message(1007, f"a message is not valid JSON ({e})")

    def send_json(self, data: t.Any) -> t.Any:
        """Send ``data`` encoded as JSON (a text message)."""
        return self._io(self._send_data(self._app.json.dumps(data)))

    def close(self, code: int = 1000, reason: str = "") -> t.Any:
        """Close the connection (before accepting, this refuses it)."""
        return self._io(self._close(code, reason))

    async def _close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        await self._send({"type": "websocket.close", "code": code, "reason": reason})
        self.closed = True
        if self._trace is not None:
            self._trace.closed(code)

    def relay(
        self,
        source: t.AsyncIterable[t.Any] | t.Iterable[t.Any],
        *,
        as_json: bool = True,
        on_receive: t.Callable[[str | bytes], t.Any] | None = None,
    ) -> t.Any:
        """Send each item of ``source`` (JSON-encoded unless ``as_json=False``)
        until it ends or the client goes away, then close ``source``.

        A handler that only sends never calls ``receive()``, so it would not see
        the client leave; this watches for that while it waits for items::

            await websocket.relay(app.broadcast.subscribe(f"user:{user_id}"))

        What the client sends meanwhile goes to ``on_receive(message)`` (a
        ``str`` or ``bytes``), one message after the other; it may be async,
        and may ``join`` or ``leave`` channels of the subscription relayed. It
        runs on the connection's loop (a sync handler's sync callback, in the
        app's thread pool), in the handler's context; what it raises ends the
        relay, raised from it. Without it, client messages are dropped.

        A broadcast subscription is sent item by item with its ids
        (``deliveries()``): ``subscribe(channel)`` sends each message as it is,
        ``subscribe_many`` a ``{"channel", "id", "event", "data"}`` object per
        message (``{"channel", "event": "gap", "last_id"}`` for a gap).
        """
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        receiver = None if on_receive is None else _Receiver(on_receive, None if on_loop else self._serving)
        policy = self._serving.source_guard
        # Async channel rules are awaited in the relay, on the connection's loop.
        later = policy if policy is not None and policy.awaits and on_loop else None
        refused = policy.guard(source) if policy is not None and later is None else []
        first = [{"event": "refused", "channel": channel} for channel in refused]
        return self._io(self._relay(source, as_json, receiver, contextvars.copy_context(), first, later))

    async def _relay(
        self,
        source: t.Any,
        as_json: bool,
        receiver: _Receiver | None,
        context: contextvars.Context,
        first: list[dict[str, str]],
        guard: SourceGuard | None = None,
    ) -> None:
        if not self.accepted:
            await self._accept()
        if guard is not None:
            first = first + [{"event": "refused", "channel": channel} for channel in await guard.aguard(source)]
        for refused in first:
            await self._send_data(self._app.json.dumps(refused))
        form: t.Callable[[t.Any], t.Any] | None = None
        iterator: AsyncIterator[t.Any] | RelayedItems
        if is_relayable(source):  # a broadcast subscription (``tether.live.broadcast``)
            if source.many and not as_json:
                raise TypeError("A subscription to several channels is relayed as JSON (its items are objects).")
            iterator = source.deliveries()
            form = iterator.wire_form
        elif isinstance(source, AsyncIterable):
            iterator = aiter(source)
        else:
            iterator = ThreadedIterator(source, self._serving.executor)
        gone = asyncio.get_running_loop().create_task(self._until_closed(receiver), context=context)
        dumps = self._app.json.dumps
        sender = DirectSender(self._send_message, _data_message)

        def encode(item: t.Any) -> t.Any:
            """A subscription's item is encoded once for all its subscribers."""
            if form is None:
                return dumps(item) if as_json else item
            return encoded_once(_json_text, item, (form, dumps)) if as_json else form(item)

        def push(item: t.Any, id: str) -> bool:
            """An item that comes while the relay waits: sent from where it was put."""
            return sender.push(encode(item))

        items = NextItem(iterator, push=push)
        try:
            while True:
                try:
                    item = await items.get((gone,))
                except StopAsyncIteration:
                    return
                if isinstance(item, Outcome):  # the client left, or on_receive failed
                    if not gone.cancelled() and gone.exception() is not None:
                        raise t.cast(BaseException, gone.exception())
                    return
                try:
                    await sender.flush()
                except OSError as e:
                    self.closed = True
                    raise WebSocketDisconnect(1006, "the client went away") from e
                await self._send_data(encode(item))
        finally:
            sender.close()
            gone.cancel()
            await items.aclose()
            if not is_pushable(iterator) and not hasattr(iterator, "aclose"):
                await _close_source(source)  # ``items`` could not close it

    async def _until_closed(self, receiver: _Receiver | None) -> None:
        """Read client messages until it goes away, handing each to ``receiver``."""
        try:
            while True:
                message = await self._receive()
                if receiver is not None:
                    await receiver(message)
        except WebSocketDisconnect:
            return

    async def _reject(self, response: Response) -> None:
        """Refuse the handshake with an HTTP response (already finished by the
        app: ``Application.rejection_steps``), where the server can send one."""
        if "websocket.http.response" in self._scope.get("extensions", {}):
            status = response.status_code
            headers = asgi_headers(response, self.request, status)
            await self._send({"type": "websocket.http.response.start", "status": status, "headers": headers})
            await self._send({"type": "websocket.http.response.body", "body": response.get_data()})
            self.closed = True
        else:
            await self._close(1008 if response.status_code == 403 else 1011, response.status)

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self._receive()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None

    def __iter__(self) -> t.Iterator[str | bytes]:
        while True:
            try:
                yield self.receive()
            except WebSocketDisconnect:
                return


async def _close_source(source: t.Any) -> None:
    """Close an async iterable whose iterator has no ``aclose``, by its own
    ``aclose`` or ``close`` (a user's class may have either, or none)."""
    close = getattr(source, "aclose", None) or getattr(source, "close", None)
    if close is not None:
        result = close()
        if asyncio.iscoroutine(result):
            await result


class _Receiver:
    """Hands a relay's client messages to ``on_receive`` (called in the
    handler's context: the task reading them runs in a copy of it)."""

    __slots__ = ("callback", "serving")

    def __init__(self, callback: t.Callable[[str | bytes], t.Any], serving: ServingState | None) -> None:
        self.callback = callback
        #: A sync handler's: a sync callback runs in its thread pool, off the loop.
        self.serving = serving

    async def __call__(self, message: str | bytes) -> None:
        if self.serving is not None and not inspect.iscoroutinefunction(self.callback):
            run = contextvars.copy_context().run
            result = await asyncio.get_running_loop().run_in_executor(self.serving.executor, run, self.callback, message)
        else:
            result = self.callback(message)
        if inspect.isawaitable(result):
            await result


def _json_text(item: t.Any, form_and_dumps: tuple[t.Callable[[t.Any], t.Any], t.Callable[[t.Any], str]]) -> str:
    form, dumps = form_and_dumps
    return dumps(form(item))


def _data_message(data: str | bytes) -> Message:
    return {"type": "websocket.send", "text": data} if isinstance(data, str) else {"type": "websocket.send", "bytes": data}


async def serve_websocket(serving: ServingState, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ASGI WebSocket connection with the app of ``serving``."""
    if (await receive())["type"] != "websocket.connect":
        return
    app = serving.app
    request = request_from_scope(app.request_class, scope, io.BytesIO())[0]
    websocket = WebSocket(serving, request, scope, receive, send, asyncio.get_running_loop())
    tracing = tracing_for(app)
    serving.opened()
    try:
        if tracing is None:
            await _serve_connection(serving, websocket)
            return
        with tracing.connection(request) as websocket._trace:  # current for the handler and its spans
            await _serve_connection(serving, websocket)
    finally:
        serving.closed()


async def _serve_connection(serving: ServingState, websocket: WebSocket) -> None:
    app, request, loop = serving.app, websocket.request, websocket._loop
    ctx = WebSocketContext(app, request, websocket)
    ctx.match_request()
    if request.routing_exception is not None:  # an untrusted host among them
        await _reject_before_handler(app, websocket, ctx, request.routing_exception)
        return
    problem = origin_problem(app, request)
    if problem is not None:
        await _reject_before_handler(app, websocket, ctx, Forbidden(problem))
        return
    steps = _connection_steps(app, ctx)
    if app.async_view(request) is not None:
        error, rejection = await _until_stopped(serving, run_async(steps))
    elif (pool := serving.claim_websocket_thread()) is not None:
        try:
            error, rejection = await loop.run_in_executor(pool, contextvars.copy_context().run, run, steps)
        finally:
            serving.release_websocket_thread()
    else:
        limit = app.config["WEBSOCKET_SYNC_THREADS"]
        warn_at_most_every_minute(
            app.logger,
            f"A WebSocket to {request.path} was refused (503): all {limit} WEBSOCKET_SYNC_THREADS hold "
            "open connections. Raise WEBSOCKET_SYNC_THREADS, or write the handler as 'async def'.",
        )
        await _reject_before_handler(app, websocket, ctx, ("Too many open WebSocket connections; try again later.", 503))
        return
    await _conclude(app, websocket, error, rejection)


async def _reject_before_handler(app: Application, websocket: WebSocket, ctx: WebSocketContext[Request], rv: t.Any) -> None:
    """Refuse a handshake before its handler runs: the response of ``rv`` is
    finished in the connection's context, as every response is (so its
    ``teardown_websocket`` functions run too)."""
    await websocket._reject(await run_async(within(ctx, _finished_rejection_steps(app, ctx, rv))))


def _connection_steps(app: Application, ctx: WebSocketContext[Request]) -> Steps[Ended]:
    """The connection in its context: push, hooks and handler, the response
    that rejects it if it never accepted, pop (also when cancelled). Returns
    the error the handler raised, and that response."""
    ctx.push()
    rv, error, rejection = None, None, None
    try:
        try:
            rv = yield from app.websocket_steps(ctx)
        except Exception as e:
            error = e
        websocket = ctx.websocket
        if not websocket.accepted and not isinstance(error, WebSocketDisconnect):
            if error is not None:
                answer = error if isinstance(error, HTTPException) else ("Internal Server Error", 500)
                rejection = yield from _finished_rejection_steps(app, ctx, answer)
            elif rv is not None:
                rejection = yield from _finished_rejection_steps(app, ctx, rv)
    finally:
        yield from ctx.pop_steps(None if isinstance(error, WebSocketDisconnect) else error)
    return error, rejection


def _finished_rejection_steps(app: Application, ctx: WebSocketContext[Request], rv: t.Any) -> Steps[Response]:
    """``app.rejection_steps``; a failure there is logged and answered with a bare 500."""
    try:
        return (yield from app.rejection_steps(ctx, rv))
    except Exception:
        app.logger.exception("Finishing the response that rejects a WebSocket failed")
        return app.response_class("Internal Server Error", 500, content_type="text/plain; charset=utf-8")


async def _until_stopped(
    serving: ServingState, connection: t.Coroutine[t.Any, t.Any, Ended]
) -> Ended:
    """Run an async handler's connection; cancel it when the server starts
    shutting down. It runs in this task, which the shared *stopping* future
    cancels: no task of its own per connection."""
    if serving.stopping is None:
        return await connection
    task = asyncio.current_task()
    stopped = serving.stopping.future()
    running = True

    def stop(_: object) -> None:
        if running and task is not None:
            task.cancel()

    stopped.add_done_callback(stop)
    try:
        return await connection
    except asyncio.CancelledError:
        if not stopped.done() or task is None:
            raise
        task.uncancel()
        return WebSocketDisconnect(1012, "the server is shutting down"), None
    finally:
        running = False
        stopped.remove_done_callback(stop)


async def _conclude(
    app: Application, websocket: WebSocket, error: BaseException | None, rejection: Response | None
) -> None:
    """Reject, close, or leave be, from what the handler raised and the
    response that rejects it, if it never accepted."""
    try:
        if isinstance(error, WebSocketDisconnect):
            await websocket._close(error.code if error.code == 1012 else 1000)
            return
        if error is not None and (websocket.accepted or not isinstance(error, HTTPException)):
            app.logger.error("Exception in WebSocket handler %s", websocket.path, exc_info=error)
            if websocket._trace is not None:
                websocket._trace.failed(error)
            if websocket.accepted:
                await websocket._close(1011)
                return
        if rejection is not None:
            await websocket._reject(rejection)
        else:
            await websocket._close(1000)
    except WebSocketDisconnect:
        pass
