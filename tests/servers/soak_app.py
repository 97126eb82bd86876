"""The app for tests/test_soak.py. Every request and socket carries an ``id``;
its teardown is written to $EVENTS_FILE, and so is anything that went wrong:
a request that saw another's ``g``, or a server thread or task that had a
tether context current before the app was called."""

from __future__ import annotations

import asyncio
import os
import threading
import time

from tether import EventStream, Response, Tether, g, request, websocket
from tether.contexts.ctx import _cv_app, _cv_request
from tether.serving.entry import install_protocol_entry

EVENTS = os.environ["EVENTS_FILE"]
_lock = threading.Lock()

tether_app = Tether(__name__)
tether_app.config.update(SYNC_THREADS=4, SSE_KEEPALIVE_INTERVAL=60)


def record(line: str) -> None:
    with _lock, open(EVENTS, "a") as f:
        f.write(line + "\n")


@tether_app.before_request
def remember_id() -> None:
    g.rid = request.args.get("id", "-")


def check_g(where: str) -> None:
    if g.rid != request.args.get("id", "-"):
        record(f"leak {where} {request.args.get('id')} saw {g.rid}")


@tether_app.teardown_request
def teardown_request(exc: BaseException | None) -> None:
    record(f"teardown {request.args.get('id')}")


@tether_app.teardown_websocket
def teardown_websocket(exc: BaseException | None) -> None:
    record(f"teardown {websocket.args.get('id')}")


@tether_app.get("/hello")
def hello() -> str:
    check_g("hello")
    return f"hello {g.rid}"


@tether_app.post("/echo")
async def echo() -> dict[str, object]:
    check_g("echo")
    return {"id": g.rid, "data": request.json}


@tether_app.get("/stream")
def stream() -> Response:
    def generate():
        for n in range(100):
            check_g("stream")
            yield f"{g.rid} {n}\n"
            time.sleep(0.01)

    return Response(generate(), mimetype="text/plain")


@tether_app.get("/events")
def events() -> EventStream:
    async def source():
        for n in range(100):
            check_g("events")
            yield {"id": g.rid, "n": n}
            await asyncio.sleep(0.01)

    return EventStream(source())


@tether_app.websocket("/ws")
async def ws() -> None:
    async for message in websocket:
        await websocket.send(f"{websocket.args.get('id')} {message}")


@tether_app.get("/state")
async def state() -> dict[str, int]:
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {"threads": threading.active_count(), "tasks": len(asyncio.all_tasks()), "rss": rss}


class CheckedApp:
    """The app, called only after checking that the server's thread or task has
    no tether context current: a request must never leave one behind."""

    def __init__(self) -> None:
        install_protocol_entry(self)

    def __call__(self, *args: object) -> object:
        if _cv_request.get(None) is not None or _cv_app.get(None) is not None:
            record("leak: a tether context was current before a request")
        return tether_app(*args)


app = CheckedApp()
