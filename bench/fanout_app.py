"""The apps ``bench/fanout_bench.py`` serves: SSE clients and WebSocket
connections that each receive every message published to one channel.

tether's is written as docs/live.md says: ``EventStream`` over a broadcast
subscription, ``websocket.relay`` of one. Starlette, the anchor, has no fan-out
of its own; it gets the usual hand-written one: a bounded ``asyncio.Queue`` per
client, a ``StreamingResponse`` for SSE and a sender task per WebSocket.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
import typing as t

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tether import EventStream, Tether, request, websocket

app = Tether(__name__)


@app.route("/feed")
async def feed() -> EventStream:
    return EventStream(app.broadcast.subscribe("feed"))


@app.websocket("/ws")
async def ws() -> None:
    await websocket.relay(app.broadcast.subscribe("feed"), as_json=False)


@app.post("/publish")
async def publish() -> dict[str, int]:
    await app.broadcast.apublish("feed", request.get_data(as_text=True))
    return {"sent": app.broadcast.subscriber_count("feed")}


queues: set[asyncio.Queue[str]] = set()


async def sl_feed(request: Request) -> StreamingResponse:
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
    queues.add(queue)

    async def events() -> t.AsyncIterator[str]:
        try:
            while True:
                yield f"data: {await queue.get()}\n\n"
        finally:
            queues.discard(queue)

    return StreamingResponse(events(), media_type="text/event-stream")


async def sl_ws(ws: WebSocket) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=100)
    queues.add(queue)

    async def forward() -> None:
        while True:
            await ws.send_text(await queue.get())

    await ws.accept()
    sender = asyncio.create_task(forward())
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        queues.discard(queue)


async def sl_publish(request: Request) -> JSONResponse:
    message = (await request.body()).decode()
    for queue in queues:
        queue.put_nowait(message)
    return JSONResponse({"sent": len(queues)})


starlette_app = Starlette(
    routes=[Route("/feed", sl_feed), WebSocketRoute("/ws", sl_ws), Route("/publish", sl_publish, methods=["POST"])]
)


if os.environ.get("FANOUT_GC_LOG"):
    _started: list[float] = []

    def _log_oldest(phase: str, info: dict[str, int]) -> None:
        """Report each collection of the oldest generation over 5 ms, with when it began."""
        if info["generation"] != 2:
            return
        if phase == "start":
            _started[:] = [time.perf_counter()]
            return
        took = (time.perf_counter() - _started[0]) * 1000
        if took > 5:
            print(f"gc2 {_started[0]!r} {took:.1f}", file=sys.stderr, flush=True)

    gc.callbacks.append(_log_oldest)
    signal.signal(signal.SIGUSR1, lambda *_: print(f"objects {len(gc.get_objects())}", file=sys.stderr, flush=True))

if os.environ.get("FANOUT_SPLIT"):
    import tracemalloc

    tracemalloc.start()
    #: Where an allocation's file puts it, first match wins: the server's part
    #: (what the bare ASGI app holds too), the contexts and request objects,
    #: the subscriptions, tether's serving and streaming code.
    _PARTS = (
        ("subscription", ("tether/live/broadcast",)),
        ("contexts", ("tether/contexts", "tether/application", "tether/locals", "werkzeug")),
        ("serving", ("tether/",)),
        ("server", ("uvicorn", "asyncio", "uvloop", "httptools", "websockets", "h11", "socket", "selectors")),
    )

    def _part(filename: str) -> str:
        return next((name for name, marks in _PARTS if any(mark in filename for mark in marks)), "other")

    def _split(*_: object) -> None:
        """Print the bytes traced now, by part: ``split NAME BYTES`` lines on stderr."""
        totals: dict[str, int] = {}
        for stat in tracemalloc.take_snapshot().statistics("filename"):
            name = _part(stat.traceback[0].filename)
            totals[name] = totals.get(name, 0) + stat.size
        print(" ".join(["split"] + [f"{name}={size}" for name, size in sorted(totals.items())]), file=sys.stderr, flush=True)

    signal.signal(signal.SIGWINCH, _split)

#: ``--freeze``: the clients are connected; move every object there is now out
#: of the collector's sight (``gc.freeze()``), as an app could once it is warm.
signal.signal(signal.SIGUSR2, lambda *_: gc.freeze())


#: No framework: each connection's ASGI ``send``, called in turn by the publish
#: (the server's own floor for a fan-out).
raw_sends: dict[t.Any, str] = {}


async def raw_app(scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        raw_sends[send] = "ws"
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            raw_sends.pop(send, None)
    elif scope["path"] == "/feed":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        raw_sends[send] = "sse"
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            raw_sends.pop(send, None)
    else:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        frame = b"data: " + body + b"\n\n"
        for each, kind in list(raw_sends.items()):
            if kind == "sse":
                await each({"type": "http.response.body", "body": frame, "more_body": True})
            else:
                await each({"type": "websocket.send", "text": body.decode()})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})
