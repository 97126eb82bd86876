"""An app served by several uvicorn workers for tests/test_redis_broadcast.py:
SSE and WebSocket subscribers of one broadcast channel on Redis."""

import os

from tether import EventStream, Tether, request, websocket

app = Tether(__name__)
app.config["BROADCAST_URL"] = os.environ["BROADCAST_URL"]
CHANNEL = os.environ["CHANNEL"]


@app.get("/feed")
def feed() -> EventStream:
    return EventStream(app.broadcast.subscribe(CHANNEL, last_id=request.last_event_id, maxsize=1000))


@app.get("/subscribers")
def subscribers() -> dict[str, int]:
    return {"pid": os.getpid(), "count": app.broadcast.subscriber_count(CHANNEL)}


@app.websocket("/ws")
async def ws() -> None:
    subscription = app.broadcast.subscribe(CHANNEL, maxsize=1000)
    await websocket.send_json({"pid": os.getpid()})  # subscribed: the client may publish
    await websocket.relay(subscription)


@app.post("/publish")
def publish() -> dict[str, str]:
    """A sync view publishing: under gunicorn's sync worker there is no event loop."""
    return {"id": app.broadcast.publish(CHANNEL, request.get_json())}
