"""An app for tests/test_websocket_origin.py: WEBSOCKET_ALLOWED_ORIGINS set as
$ORIGINS (JSON) says, directly, or from the environment when $ORIGINS_FROM_ENV."""

import json
import os

from tether import Tether, websocket

app = Tether(__name__)
if os.environ.get("ORIGINS_FROM_ENV"):
    app.config.from_prefixed_env()
elif "ORIGINS" in os.environ:
    app.config["WEBSOCKET_ALLOWED_ORIGINS"] = json.loads(os.environ["ORIGINS"])


@app.websocket("/ws")
async def ws() -> None:
    await websocket.send("in")
