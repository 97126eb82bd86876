"""The apps of bench/broadcast_bench.py: WebSocket and SSE subscribers of one
channel, on tether's Redis broadcast and on encode/broadcaster's (the anchor)."""

from __future__ import annotations

import asyncio
import contextlib
import os
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
def tether_sse() -> EventStream:
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
