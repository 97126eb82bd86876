"""The app for bench/relay_bench.py: WebSocket clients relaying one broadcast
channel (``websocket.relay``), and a publisher that sends bursts as fast as
the subscribers take them."""

from __future__ import annotations

import asyncio
import time

from tether import Tether, request, websocket

app = Tether(__name__)


@app.websocket("/relay")
async def relay() -> None:
    await websocket.relay(app.broadcast.subscribe("burst"), as_json=False)


@app.get("/subscribers")
def subscribers() -> dict[str, int]:
    return {"subscribers": app.broadcast.subscriber_count("burst")}


@app.post("/burst")
async def burst() -> dict[str, float]:
    """Publish ``n`` messages in bursts of one queue's size, each burst once the
    subscribers have taken the last: the rate they keep up with, no drops."""
    n = int(request.args["n"])
    broadcast = app.broadcast
    subscriptions = [s for s in broadcast._subscriptions.get("burst", ())]
    size = broadcast.maxsize
    started = time.perf_counter()
    for first in range(0, n, size):
        for i in range(first, min(first + size, n)):
            await broadcast.apublish("burst", str(i))
        while any(s.queued() for s in subscriptions):
            await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "dropped": sum(s.dropped for s in subscriptions)}
