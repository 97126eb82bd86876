import asyncio

from tether import EventStream, Tether, request, websocket

app = Tether(__name__)


@app.get("/hello/<name>")
def hello(name: str) -> dict[str, str]:
    return {"hello": name}


@app.websocket("/echo")
async def echo() -> None:
    await websocket.accept()
    async for message in websocket:
        await websocket.send(message.upper())


@app.get("/ticks")
async def ticks() -> EventStream:
    async def source():
        for n in range(int(request.args.get("count", 3))):  # request works in here
            yield {"tick": n}
            await asyncio.sleep(0.01)

    return EventStream(source())  # framing, no-cache, keep-alives, disconnects
