"""The app for bench/fanout_bench.py: SSE clients and WebSocket connections that
each receive what is published to all (an in-process fan-out, one worker)."""

from __future__ import annotations

import asyncio
import typing as t

from tether import EventStream, Tether, request, websocket

app = Tether(__name__)
queues: set[asyncio.Queue[str]] = set()


def subscribe() -> asyncio.Queue[str]:
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
    queues.add(queue)
    return queue


@app.route("/feed")
async def feed() -> EventStream:
    queue = subscribe()

    async def messages() -> t.AsyncIterator[str]:
        try:
            while True:
                yield await queue.get()
        finally:
            queues.discard(queue)

    return EventStream(messages(), keepalive=60)


@app.websocket("/ws")
async def ws() -> None:
    await websocket.accept()
    queue = subscribe()

    async def forward() -> None:
        while True:
            await websocket.send(await queue.get())

    sender = asyncio.create_task(forward())
    try:
        async for _ in websocket:  # returns when the client closes
            pass
    finally:
        sender.cancel()
        queues.discard(queue)


@app.post("/publish")
async def publish() -> dict[str, int]:
    message = request.get_data(as_text=True)
    for queue in queues:
        queue.put_nowait(message)
    return {"sent": len(queues)}


@app.route("/stats")
async def stats() -> dict[str, int]:
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return {"subscribers": len(queues), "rss_kib": rss}
