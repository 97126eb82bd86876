"""The chat example, instrumented for tests/test_uvicorn.py: teardowns, generator
endings and the serving lifecycle are written to $EVENTS_FILE."""

import asyncio
import os
import threading

from examples.chat.app import app

from tether import request, websocket

EVENTS = os.environ["EVENTS_FILE"]


def record(line: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(line + "\n")


@app.teardown_request
def teardown_request(exc):
    record(f"teardown {request.path}")


@app.teardown_websocket
def teardown_websocket(exc):
    record(f"teardown ws {websocket.path}")


@app.after_serving
def after_serving():
    record("after_serving")


#: Set by /release: /slow holds its worker thread until then, so a test knows
#: it is busy for as long as it needs, without guessing a duration.
released = threading.Event()


@app.route("/slow")
def slow():
    record("slow started")
    released.wait(30)
    return "slow"


@app.route("/release")
async def release():
    released.set()
    return "released"


@app.route("/ping")
async def ping():
    return "pong"


@app.route("/ticks")
async def ticks():
    async def generate():
        try:
            n = 0
            while True:
                n += 1
                yield f"tick {n}\n"
                await asyncio.sleep(0.02)
        finally:
            record(f"finally {request.path}")

    return generate()


@app.websocket("/hold")
async def hold():
    await websocket.accept()
    try:
        async for message in websocket:
            await websocket.send(message)
    finally:
        record("finally /hold")
