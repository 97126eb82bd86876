"""An app for tests/test_direct.py: SSE and WebSocket subscribers of one
broadcast channel, and a view that publishes a burst from the event loop."""

import asyncio
import threading

from tether import EventStream, Tether, request, websocket

app = Tether(__name__)


@app.get("/feed")
async def feed() -> EventStream:
    return EventStream(app.broadcast.subscribe("burst", maxsize=50))


@app.websocket("/ws")
async def ws() -> None:
    await websocket.relay(app.broadcast.subscribe("burst", maxsize=50))


@app.get("/feed-all")
async def feed_all() -> EventStream:
    return EventStream(app.broadcast.subscribe("burst", maxsize=100_000))


@app.get("/subscribers")
def subscribers() -> dict[str, int]:
    return {"count": app.broadcast.subscriber_count("burst")}


@app.post("/burst")
async def burst() -> dict[str, int]:
    """Publish ``n`` messages of ``size`` bytes in one go, without yielding to the loop."""
    n, pad = int(request.args["n"]), "x" * int(request.args.get("size", "0"))
    for i in range(n):
        await app.broadcast.apublish("burst", {"n": i, "pad": pad})
    return {"last": n - 1}


@app.post("/mixed")
async def mixed() -> dict[str, int]:
    """Publish ``n`` messages from each of three threads and from the loop at once."""
    n = int(request.args["n"])

    def publish_from_a_thread() -> None:
        for i in range(n):
            app.broadcast.publish("burst", {"n": i, "from": threading.get_ident()})

    threads = [threading.Thread(target=publish_from_a_thread) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(n):
        await app.broadcast.apublish("burst", {"n": i, "from": "loop"})
        await asyncio.sleep(0)
    await asyncio.to_thread(lambda: [thread.join() for thread in threads])
    return {"sent": 4 * n}


@app.post("/same-object")
async def same_object() -> dict[str, int]:
    """Publish one dict three times, changed in between (each publish is a new message)."""
    state = {"n": 0}
    for i in range(3):
        state["n"] = i
        await app.broadcast.apublish("burst", state)
        await asyncio.sleep(0.05)  # delivered before the next change
    return {"sent": 3}
