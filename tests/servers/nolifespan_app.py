"""An app for servers that send no lifespan (daphne, ``uvicorn --lifespan off``):
the serving lifecycle, the periodic service and stream endings are written to
$EVENTS_FILE, each line with the process id."""

import asyncio
import os
import threading

import tether

EVENTS = os.environ["EVENTS_FILE"]
app = tether.Tether(__name__)


def record(line: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(f"{os.getpid()} {line}\n")


@app.before_serving
async def before_serving():
    await asyncio.sleep(0.2)  # first requests arriving together all wait for this
    record(f"before_serving loop={id(asyncio.get_running_loop())}")


@app.after_serving
def after_serving():
    record("after_serving")


@app.periodic(0.05)
async def tick():
    record(f"tick loop={id(asyncio.get_running_loop())}")


@app.route("/")
def index():
    return f"ok {threading.current_thread().name}"


@app.route("/loop")
async def loop():
    return f"loop={id(asyncio.get_running_loop())}"


@app.route("/endless")
async def endless():
    async def generate():
        try:
            while True:
                yield "tick\n"
                await asyncio.sleep(0.05)
        finally:
            record("stream ended")

    return generate()


@app.websocket("/echo")
async def echo():
    await websocket_accept()


async def websocket_accept():
    await tether.websocket.accept()
    async for message in tether.websocket:
        await tether.websocket.send(message)
