"""The ASGI HTTP adapter: an HTTP scope in, ``http.response.*`` messages out.

A request is answered in one of two ways:

* a sync view (Flask's kind) runs the whole request, hooks included, in one hop
  to the bounded thread pool (``sync_pool``), inside a ``contextvars.Context``
  of its own, as under WSGI; a streamed sync body is iterated in the pool
  inside that Context. A small declared body is read before the hop.
* an async view runs on the loop, its body read first (``tether.serving.asgi_body``).

A streamed body is produced no faster than the client takes it (each chunk is
sent before the next is asked for), and it ends when the client disconnects or
the server starts shutting down; either way the source is closed and the
request's teardown runs, once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import typing as t
from collections.abc import AsyncIterable, AsyncIterator

from ..application.helpers import marked_stream_body
from ..application.pipeline import Finish
from ..application.wrappers import Request, Response
from ..contexts.ctx import RequestContext
from ..contexts.propagation import wait_through_cancellation
from ..contexts.steps import run, run_async
from ..typing import Message, Receive, Scope, Send
from .asgi_body import RequestBody
from .asgi_request import request_from_scope
from .direct import DirectSender, current_sender
from .headers import asgi_headers, body_allowed
from .lifecycle import ServingState
from .threaded import ThreadedIterator

__all__ = ["serve_http", "stream_chunks"]

#: The largest declared body a sync view's request reads on the loop before its
#: hop to the pool; a larger one is read from the pool as the view asks for it.
SMALL_BODY = 64 * 1024


async def serve_http(serving: ServingState, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ASGI HTTP request with the app of ``serving``."""
    app = serving.app
    loop = asyncio.get_running_loop()
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = RequestBody(receive, loop, limit)
    request, (declared, chunked) = request_from_scope(app.request_class, scope, body)
    ctx = RequestContext(app, None, request=request)
    request.match_url(app)
    if declared == 0 or (declared is None and not chunked and scope.get("http_version", "1.1")[0] == "1"):
        body.expect_none()  # HTTP/1 frames every body with one of those headers
    elif limit is not None and declared is not None and declared > limit:
        body.refuse()
    view = app.async_view(request)
    if view is not None:
        if body.unread and not marked_stream_body(view):
            await body.load(declared)
        response, finish = await app.handle_async(ctx)
        if finish is None:
            start, whole = _response_messages(response, request)
            await send(start)
            await send(whole)
            return
        error: BaseException | None = None
        serving.opened()
        try:
            await _send_stream(serving, response, request, send, body, _async_chunks(response.response))
        except Exception as e:  # the server logs it and cuts the response
            error = e
            raise
        finally:
            try:
                await wait_through_cancellation(asyncio.ensure_future(_aclose(response.response)))
            finally:
                try:
                    await run_async(finish(error))
                finally:
                    serving.closed()
        return
    if body.unread and declared is not None and declared <= SMALL_BODY:
        # A small declared body is read here, where it is already arriving,
        # instead of from the pool with a round trip to the loop per read.
        await body.load(declared)
    await _serve_sync(serving, loop, ctx, request, send, body, declared)


def _finish_abandoned(context: contextvars.Context, answer: tuple[Response, Finish | None]) -> None:
    """Close a streamed response nobody will send (its request was cancelled
    while the view ran) and pop its context, on the request's thread."""
    finish = answer[1]
    if finish is not None:
        context.run(run, finish(None))


def _streamed(answer: tuple[Response, t.Any]) -> bool:
    """Whether ``app.handle`` left its request open: a streamed body to produce."""
    return answer[1] is not None


async def _serve_sync(
    serving: ServingState,
    loop: asyncio.AbstractEventLoop,
    ctx: RequestContext[Request],
    request: Request,
    send: Send,
    body: RequestBody,
    declared: int | None,
) -> None:
    """A sync view's request, on one thread of the pool from its first hook to
    its last teardown (``sync_pool.HeldThread``): a streamed body is produced
    there, and its teardown runs there after the body's source has closed."""
    app = serving.app
    context = contextvars.copy_context()
    thread = serving.executor.hold(keep=_streamed)
    try:
        response, sync_finish = await thread.run(loop, context.run, app.handle, ctx)
    except asyncio.CancelledError:
        thread.abandon(functools.partial(_finish_abandoned, context))
        raise
    if sync_finish is None:  # the thread went back to the pool after the call
        start, whole = _response_messages(response, request)
        await send(start)
        await send(whole)
        return
    source = response.response
    error = None
    serving.opened()
    try:
        if body.unread:
            await body.load(declared)
        if isinstance(source, AsyncIterable):
            # Produced on the loop, each chunk in the request's Context.
            await _send_stream(serving, response, request, send, body, _async_chunks(source), context)
        else:
            chunks = ThreadedIterator.on(thread, source, context, _as_bytes)
            await _send_stream(serving, response, request, send, body, chunks)
    except Exception as e:  # the server logs it and cuts the response
        error = e
        raise
    finally:
        try:
            if isinstance(source, AsyncIterable):
                await wait_through_cancellation(loop.create_task(_aclose(source), context=context))
        finally:
            # Queued behind any chunk still being produced; it runs, and the
            # thread is given back, even if this wait is cancelled.
            finished = thread.run(loop, context.run, run, sync_finish(error))
            thread.release()
            try:
                await wait_through_cancellation(finished)
            finally:
                serving.closed()


async def _aclose(source: t.Any) -> None:
    """Close an async body, even one never iterated (closing twice is harmless)."""
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()


async def _async_chunks(source: t.Any) -> AsyncIterator[bytes]:
    """The body's chunks as bytes; the source is closed here, on the loop that
    iterated it, however the stream ends."""
    try:
        if isinstance(source, AsyncIterable):
            async for chunk in source:
                yield chunk.encode() if isinstance(chunk, str) else chunk
        else:
            for chunk in source:
                yield chunk.encode() if isinstance(chunk, str) else chunk
    finally:
        await _aclose(source)


def _as_bytes(chunk: str | bytes) -> bytes:
    return chunk.encode() if isinstance(chunk, str) else chunk


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


async def _send_stream(
    serving: ServingState,
    response: Response,
    request: Request,
    send: Send,
    body: RequestBody,
    chunks: AsyncIterator[bytes],
    context: contextvars.Context | None = None,
) -> None:
    status = response.status_code
    await send({"type": "http.response.start", "status": status, "headers": asgi_headers(response, request, status)})
    if not body_allowed(request.method, status):
        await send({"type": "http.response.body", "body": b""})
        return
    await stream_chunks(serving, chunks, body, send, context, response.send_timeout)


async def stream_chunks(
    serving: ServingState,
    chunks: AsyncIterator[bytes],
    body: RequestBody,
    send: Send,
    context: contextvars.Context | None = None,
    send_timeout: float | None = None,
) -> None:
    """Send ``chunks`` as they come until they end, the client disconnects, the
    server starts shutting down, or one send takes longer than ``send_timeout``;
    ``chunks`` is closed in every case.

    The chunks are produced and sent by one task, raced once against the
    disconnect and the shutdown, rather than each chunk against them: a chunk
    costs a generator step and a send, which is what lets one worker fan a
    message out to thousands of streams quickly. With no ``context``, that
    task is the caller's own, so the body runs in the very Context its view
    ran in (a span made current across a ``yield`` stays current); else it is
    a task in ``context``.
    """
    disconnect = asyncio.ensure_future(body.wait_disconnect())
    stopping = serving.stopping.future() if serving.stopping is not None else None
    try:
        if context is None:
            server_stopping = await _pump_here(_pump(chunks, send, send_timeout, serving), disconnect, stopping)
        else:
            server_stopping = await _pump_in(context, _pump(chunks, send, send_timeout, serving), disconnect, stopping)
    finally:
        disconnect.cancel()
    if server_stopping:  # end the response cleanly
        await send({"type": "http.response.body", "body": b""})


async def _pump_here(
    pump: t.Coroutine[t.Any, t.Any, None], disconnect: asyncio.Future[t.Any], stopping: asyncio.Future[None] | None
) -> bool:
    """Run ``pump`` in the current task, cancelled if the client disconnects or
    the server stops first; returns whether the server stopped it."""
    task = asyncio.current_task()
    assert task is not None
    ended: list[asyncio.Future[t.Any]] = []

    def end(future: asyncio.Future[t.Any]) -> None:
        if not ended and not finished:
            ended.append(future)
            task.cancel()

    finished = False
    watched = [disconnect] if stopping is None else [disconnect, stopping]
    for future in watched:
        future.add_done_callback(end)
    try:
        await pump
    except asyncio.CancelledError:
        if not ended or task.uncancel():  # cancelled from outside too
            raise
        return ended[0] is not disconnect
    finally:
        finished = True
        for future in watched:
            future.remove_done_callback(end)
    return False


async def _pump_in(
    context: contextvars.Context,
    pump: t.Coroutine[t.Any, t.Any, None],
    disconnect: asyncio.Future[t.Any],
    stopping: asyncio.Future[None] | None,
) -> bool:
    """Run ``pump`` as a task in ``context``, raced against the disconnect and
    the server stopping; returns whether the server stopped it."""
    task = asyncio.get_running_loop().create_task(pump, context=context)
    watched: set[asyncio.Future[t.Any]] = {task, disconnect}
    if stopping is not None:
        watched.add(stopping)
    try:
        done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return False
        return not disconnect.done()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _more_body(chunk: bytes) -> dict[str, t.Any]:
    return {"type": "http.response.body", "body": chunk, "more_body": True}


async def _pump(chunks: AsyncIterator[bytes], send: Send, send_timeout: float | None, serving: ServingState) -> None:
    """Send every chunk, then the end of the body; close ``chunks`` however it ends.

    A send that hangs past ``send_timeout`` ends the stream. One timer serves
    the whole stream: it is moved on when it fires during a send that began
    later, and not re-armed while no send is under way, so a stream of many
    small chunks (a fanned-out message per subscriber) makes no timer per chunk.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    timed_out = False
    sending_since: float | None = None
    timer: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal timed_out, timer
        timer = None
        if sending_since is None or send_timeout is None:
            return
        due = sending_since + send_timeout
        if loop.time() < due:
            timer = loop.call_at(due, check)
            return
        timed_out = True
        if task is not None:
            task.cancel()

    sender = DirectSender(send, _more_body)
    token = current_sender.set(sender)
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            message = _more_body(chunk)
            if send_timeout is None:
                await sender.flush()
                await send(message)
                continue
            sending_since = loop.time()
            if timer is None:
                timer = loop.call_at(sending_since + send_timeout, check)
            try:
                await sender.flush()
                await send(message)
            except asyncio.CancelledError:
                if not timed_out or task is None:
                    raise
                task.uncancel()
                serving.app.logger.warning("A streamed response was ended: a send took longer than %s s.", send_timeout)
                return
            finally:
                sending_since = None
        await sender.flush()
        await send({"type": "http.response.body", "body": b""})
    finally:
        current_sender.reset(token)
        sender.close()
        if timer is not None:
            timer.cancel()
        await chunks.aclose()  # type: ignore[attr-defined]
