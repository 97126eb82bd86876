"""The apps of bench/broadcast_bench.py: WebSocket and SSE subscribers of one
channel, on tether's Redis broadcast, on encode/broadcaster's (the anchor), and
on a bare Redis Streams reader (the floor)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import traceback
import types
import typing as t

from broadcaster import Broadcast as Broadcaster
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tether import EventStream, Tether, websocket

URL = os.environ.get("BROADCAST_URL", "redis://127.0.0.1:6379/0")
CHANNEL = os.environ.get("BENCH_CHANNEL", "bench")

tether_app = Tether(__name__)
tether_app.config["BROADCAST_URL"] = URL


@tether_app.websocket("/ws")
async def tether_ws() -> None:
    await websocket.relay(tether_app.broadcast.subscribe(CHANNEL))


@tether_app.get("/sse")
async def tether_sse() -> EventStream:
    # Async: a sync view's streamed response holds a thread of the pool (SYNC_THREADS) until it ends.
    return EventStream(tether_app.broadcast.subscribe(CHANNEL), keepalive=600)


@tether_app.get("/subscribers")
def tether_subscribers() -> dict[str, int]:
    return {"subscribers": tether_app.broadcast.subscriber_count(CHANNEL), "pid": os.getpid()}


broadcaster = Broadcaster(URL)
_subscribers = 0


async def anchor_ws(ws: WebSocket) -> None:
    global _subscribers
    await ws.accept()
    async with broadcaster.subscribe(CHANNEL) as subscriber:
        _subscribers += 1
        try:
            async for event in subscriber:  # type: ignore[union-attr]
                await ws.send_text(event.message)
        finally:
            _subscribers -= 1


async def anchor_sse(request: t.Any) -> StreamingResponse:
    async def events() -> t.AsyncIterator[str]:
        global _subscribers
        async with broadcaster.subscribe(CHANNEL) as subscriber:
            _subscribers += 1
            try:
                async for event in subscriber:  # type: ignore[union-attr]
                    yield f"data: {event.message}\n\n"
            finally:
                _subscribers -= 1

    return StreamingResponse(events(), media_type="text/event-stream")


async def anchor_subscribers(request: t.Any) -> JSONResponse:
    return JSONResponse({"subscribers": _subscribers, "pid": os.getpid()})


@contextlib.asynccontextmanager
async def lifespan(app: t.Any) -> t.AsyncIterator[None]:
    """Work around two races of broadcaster 0.3.1 so the anchor delivers at all.

    Its Redis listener can start listening before the first SUBSCRIBE is sent,
    stop, and wait for a signal that never comes; and two first subscribers of
    a channel arriving together overwrite each other's queue, so one of them
    never receives anything. One subscription held from startup, drained here,
    avoids both: later subscribers only join a set.
    """
    await broadcaster.connect()
    async with broadcaster.subscribe(CHANNEL) as held:
        await asyncio.sleep(0.2)
        broadcaster._backend._ready.set()  # type: ignore[attr-defined]

        async def drain() -> None:
            async for _ in held:  # type: ignore[union-attr]
                pass

        drainer = asyncio.ensure_future(drain())
        yield
        drainer.cancel()
    await broadcaster.disconnect()


anchor_app = Starlette(
    routes=[WebSocketRoute("/ws", anchor_ws), Route("/sse", anchor_sse), Route("/subscribers", anchor_subscribers)],
    lifespan=lifespan,
)


class FloorApp:
    """The floor: a bare ASGI app whose worker reads the channel's Redis
    Stream with one ``XREAD`` loop and writes each message to every open
    WebSocket and SSE stream of that worker itself (``write``: the server's
    ``send`` run in place, no task or wake-up per connection), with no
    framework, no subscription and no queue: what fan-out through Redis
    Streams costs at the least on this server."""

    def __init__(self) -> None:
        self.websockets: set[t.Callable[[dict[str, t.Any]], t.Awaitable[None]]] = set()
        self.streams: set[t.Callable[[dict[str, t.Any]], t.Awaitable[None]]] = set()

    async def __call__(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await self.hold(self.websockets, send, receive, "websocket.disconnect")
        elif scope["path"] == "/sse":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            await self.hold(self.streams, send, receive, "http.disconnect")
        else:
            body = f'{{"subscribers": {len(self.websockets) + len(self.streams)}, "pid": {os.getpid()}}}'.encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})

    async def hold(self, connections: set[t.Any], send: t.Any, receive: t.Any, end: str) -> None:
        connections.add(send)
        try:
            while (await receive())["type"] != end:
                pass
        finally:
            connections.discard(send)

    async def lifespan(self, receive: t.Any, send: t.Any) -> None:
        await receive()  # lifespan.startup
        reader = asyncio.ensure_future(self.read())
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        reader.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    async def read(self) -> None:
        try:
            await self.read_forever()
        except Exception:
            traceback.print_exc()
            raise

    async def read_forever(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(URL, socket_timeout=None)
        last: bytes | str = "$"
        while True:
            for _, entries in await client.xread({FLOOR_STREAM: last}, block=10_000):
                for last, fields in entries:  # noqa: B007 (the last id read, for the next read)
                    text = fields[b"m"].decode()
                    frame = {"type": "websocket.send", "text": text}
                    for send in list(self.websockets):
                        write(send, frame)
                    chunk = {"type": "http.response.body", "body": f"data: {text}\n\n".encode(), "more_body": True}
                    for send in list(self.streams):
                        write(send, chunk)


def write(send: t.Callable[[dict[str, t.Any]], t.Awaitable[None]], message: dict[str, t.Any]) -> None:
    """Run ``send(message)`` here and now: the server nearly always writes to
    its transport without waiting; when it must wait, the rest runs in a task.
    (A connection gone away is left to its handler, which sees it end.)"""
    step = send(message).__await__()
    try:
        waiting = step.send(None)
    except StopIteration:
        return
    except Exception:
        return
    asyncio.ensure_future(_rest(step, waiting))


@types.coroutine
def _rest(step: t.Generator[t.Any, t.Any, t.Any], waiting: t.Any) -> t.Generator[t.Any, t.Any, None]:
    """The rest of a ``send`` that had to wait, driven by a task."""
    while True:
        result = yield waiting
        try:
            waiting = step.send(result)
        except StopIteration:
            return


#: The floor's stream: the bench XADDs each message there.
FLOOR_STREAM = f"bench-floor:{CHANNEL}"
floor_app = FloorApp()
