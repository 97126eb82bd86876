"""An app for tests/test_direct.py: SSE and WebSocket subscribers of one
broadcast channel, and a view that publishes a burst from the event loop."""

from tether import EventStream, Tether, request, websocket

app = Tether(__name__)


@app.get("/feed")
async def feed() -> EventStream:
    return EventStream(app.broadcast.subscribe("burst", maxsize=50))


@app.websocket("/ws")
async def ws() -> None:
    await websocket.relay(app.broadcast.subscribe("burst", maxsize=50))


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
