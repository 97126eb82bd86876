import asyncio
import json

from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect


async def hello(request):
    return JSONResponse({"hello": request.path_params["name"]})


async def echo(websocket):
    await websocket.accept()
    try:
        while True:
            await websocket.send_text((await websocket.receive_text()).upper())
    except WebSocketDisconnect:
        pass


async def ticks(request):
    count = int(request.query_params.get("count", 3))  # the request is passed, not global

    async def source():
        for n in range(count):
            yield f"data: {json.dumps({'tick': n})}\n\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(source(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


app = Starlette(routes=[Route("/hello/{name}", hello), WebSocketRoute("/echo", echo), Route("/ticks", ticks)])
