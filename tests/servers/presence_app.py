"""An app whose WebSocket and SSE connections enter presence, served by
several uvicorn processes on Redis for tests/test_presence.py."""

import os

from tether import EventStream, ServerSentEvent, Tether, request, websocket

app = Tether(__name__)
app.config["BROADCAST_URL"] = os.environ["BROADCAST_URL"]
app.config.from_prefixed_env()  # TETHER_BROADCAST_NAMESPACE, TETHER_PRESENCE_TTL


@app.websocket("/room/<name>")
async def room(name: str) -> None:
    """A tab: present while the socket is open."""
    meta = {"name": websocket.args["member"].title(), "device": websocket.args["device"]}
    async with app.presence.enter(name, websocket.args["member"], meta) as here:
        await websocket.send_json({"pid": os.getpid(), "first": here.first})
        async for _ in websocket:
            pass


@app.get("/room/<name>/events")
def events(name: str) -> EventStream:
    """A tab as an SSE stream: present while the client reads it."""
    member, device = request.args["member"], request.args["device"]

    async def source():
        async with app.presence.enter(name, member, {"name": member.title(), "device": device}) as here:
            yield ServerSentEvent({"pid": os.getpid(), "first": here.first}, event="entered")
            with app.broadcast.subscribe(name) as subscription:
                async for message in subscription:
                    yield message

    return EventStream(source())


@app.get("/room/<name>/members")
def members(name: str) -> dict[str, object]:
    return {"pid": os.getpid(), "members": app.presence.members(name)}
