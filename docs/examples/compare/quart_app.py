import asyncio
import json

from quart import Quart, make_response, request, stream_with_context, websocket

app = Quart(__name__)


@app.get("/hello/<name>")
async def hello(name):
    return {"hello": name}


@app.websocket("/echo")
async def echo():
    while True:
        message = await websocket.receive()
        await websocket.send(message.upper())


@app.get("/ticks")
async def ticks():
    @stream_with_context  # as in Flask, for request inside the generator
    async def source():
        for n in range(int(request.args.get("count", 3))):
            yield f"data: {json.dumps({'tick': n})}\n\n".encode()
            await asyncio.sleep(0.01)

    response = await make_response(source(), {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    response.timeout = None  # else Quart cuts the stream after RESPONSE_TIMEOUT
    return response
