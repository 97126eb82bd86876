from tether import EventStream, Tether, request, websocket

app = Tether(__name__)
app.config.from_mapping(
    BROADCAST_URL="memory://",  # redis://host:6379/0 to reach every worker and host
    BROADCAST_HISTORY=1000,  # kept per channel, for resuming
    BROADCAST_QUEUE_SIZE=100,  # per subscriber
    BROADCAST_OVERFLOW="drop-oldest",  # or "disconnect"
)
app.config.from_prefixed_env()


@app.post("/rooms/<room>")
def post(room: str) -> dict[str, str]:
    return {"id": app.broadcast.publish(f"room:{room}", request.json)}


@app.get("/rooms/<room>/events")
def events(room: str) -> EventStream:
    # Ids go out as SSE id: lines, so a reconnecting browser resumes exactly;
    # a gap event first when the history no longer reaches its Last-Event-ID.
    return EventStream(app.broadcast.subscribe(f"room:{room}", last_id=request.last_event_id))


@app.websocket("/rooms/<room>/socket")
async def socket(room: str) -> None:
    await websocket.accept()
    await websocket.relay(app.broadcast.subscribe(f"room:{room}"))
