from tether import Response, Tether, WebSocketDisconnect, websocket

app = Tether(__name__)
app.config["WEBSOCKET_ALLOWED_ORIGINS"] = ["https://app.example.com"]


@app.websocket("/echo")
async def echo() -> None:
    await websocket.accept()
    async for message in websocket:
        await websocket.send(f"{message} from {websocket.args.get('room', 'lobby')}")


@app.websocket("/sum")
def add_up() -> None:
    # A sync handler: receive() and send() block its thread, one per connection.
    websocket.accept()
    total = 0
    try:
        while True:
            total += sum(websocket.receive_json())
            websocket.send_json({"total": total})
    except WebSocketDisconnect:  # the client left
        pass


@app.websocket("/private")
async def private() -> Response | None:
    if websocket.headers.get("Authorization") != "Bearer let-me-in":
        return Response("who are you?", status=401)  # refused before accept: an HTTP answer
    await websocket.accept()
    await websocket.send("welcome")
    return None
