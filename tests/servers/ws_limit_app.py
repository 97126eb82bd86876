"""An app for tests/test_ws_server_limit.py: a small WEBSOCKET_MAX_MESSAGE_SIZE
and an echo socket, served by ``tether run``."""

from tether import Tether, websocket

app = Tether(__name__)
app.config["WEBSOCKET_MAX_MESSAGE_SIZE"] = 1000


@app.websocket("/echo")
async def echo() -> None:
    async for message in websocket:
        await websocket.send(message)
