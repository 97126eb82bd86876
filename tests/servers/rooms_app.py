"""An app for tests/test_rooms.py: WebSocket clients that join and leave rooms
(broadcast channels) by sending commands while their subscription is relayed,
from an async handler and from a sync one, SSE feeds of several rooms and of
one, and the live endpoint (``app.live``)."""

import os
import typing as t

from tether import EventStream, Tether, request, websocket
from tether.live.broadcast import Subscription

app = Tether(__name__)
app.config["BROADCAST_URL"] = os.environ.get("BROADCAST_URL", "memory://")
app.config["BROADCAST_NAMESPACE"] = os.environ.get("BROADCAST_NAMESPACE", "rooms_app")
app.live("/live")


def obey(subscription: Subscription, message: str | bytes) -> dict[str, t.Any]:
    """``{"join": room, "last_id": ...}`` or ``{"leave": room}``; anything else fails the relay."""
    order = app.json.loads(message)
    if "join" in order:
        subscription.join(order["join"], order.get("last_id"))
    elif "leave" in order:
        subscription.leave(order["leave"])
    else:
        raise ValueError(f"Not a command: {order!r}")
    return {"done": order, "channels": list(subscription.channels)}


@app.websocket("/rooms")
async def rooms() -> None:
    subscription = app.broadcast.subscribe_many(websocket.args.getlist("room"))

    async def on_receive(message: str | bytes) -> None:
        await websocket.send_json(obey(subscription, message))  # the websocket global: the handler's context

    await websocket.send_json({"ready": list(subscription.channels)})
    await websocket.relay(subscription, on_receive=on_receive)


@app.websocket("/rooms-sync")
def rooms_sync() -> None:
    subscription = app.broadcast.subscribe_many(websocket.args.getlist("room"))
    websocket.send_json({"ready": list(subscription.channels)})
    websocket.relay(subscription, on_receive=lambda message: websocket.send_json(obey(subscription, message)))


@app.get("/feed")
def feed() -> EventStream:
    return EventStream(app.broadcast.subscribe_many(request.args.getlist("room"), last_ids=request.last_event_id))


@app.get("/feed-one")
def feed_one() -> EventStream:
    return EventStream(app.broadcast.subscribe(request.args["room"], last_id=request.last_event_id))


@app.post("/publish-many/<path:room>")
def publish_many(room: str) -> dict[str, list[str]]:
    return {"ids": [app.broadcast.publish(room, message) for message in request.get_json()]}


@app.post("/publish/<path:room>")
def publish(room: str) -> dict[str, str]:
    return {"id": app.broadcast.publish(room, request.get_json(), event=request.args.get("event"))}


@app.get("/subscribers/<path:room>")
def subscribers(room: str) -> dict[str, int]:
    return {"count": app.broadcast.subscriber_count(room)}
