"""One app with the whole feature set, served by every server of
tests/test_server_matrix.py. It writes what happens, one line each, to
$EVENTS_FILE: the serving lifecycle, and for each request tagged ``?t=``,
its body's ``finally`` and its teardown, so the test can check their order."""

import asyncio
import os
import time

from tether import EventStream, Tether, current_job, g, request, websocket

app = Tether(__name__)
app.config["SPAWN_GRACE_PERIOD"] = 2.0
EVENTS = os.environ["EVENTS_FILE"]


def record(line: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(f"{line}\n")


@app.before_serving
def before_serving() -> None:
    record(f"before_serving {os.getpid()}")


@app.after_serving
async def after_serving() -> None:
    await asyncio.sleep(0)
    record(f"after_serving {os.getpid()}")


ticks = 0


@app.periodic(0.1)
def count_ticks() -> None:
    global ticks
    ticks += 1


@app.before_request
def tag() -> None:
    g.tag = request.args.get("t", "-")


@app.teardown_request
def teardown(exc: BaseException | None) -> None:
    if request.args.get("t"):
        record(f"teardown {g.tag}")


@app.teardown_websocket
def teardown_ws(exc: BaseException | None) -> None:
    record(f"teardown {g.tag}")


@app.route("/sync")
def sync_view() -> str:
    time.sleep(float(request.args.get("sleep", 0)))
    return f"sync {request.args['n']} {g.tag}"


@app.route("/async")
async def async_view() -> str:
    await asyncio.sleep(float(request.args.get("sleep", 0)))
    return f"async {request.args['n']} {g.tag}"


def count() -> int:
    """How many chunks a stream sends; 0 for an endless one."""
    return int(request.args.get("count", 0))


def tick() -> float:
    """Seconds between two chunks."""
    return float(request.args.get("tick", 0.05))


@app.route("/gen")
def gen():
    def body():
        try:
            n = 0
            while not count() or n < count():
                n += 1
                yield f"{n} {request.path} {g.tag}\n"
                time.sleep(tick())
        finally:
            record(f"finally {g.tag}")

    return body()


@app.route("/agen")
async def agen():
    async def body():
        try:
            n = 0
            while not count() or n < count():
                n += 1
                yield f"{n} {request.path} {g.tag}\n"
                await asyncio.sleep(tick())
        finally:
            record(f"finally {g.tag}")

    return body()


@app.route("/sse-sync")
def sse_sync():
    def source():
        try:
            n = 0
            while not count() or n < count():
                n += 1
                yield {"n": n, "tag": g.tag, "path": request.path}
                time.sleep(tick())
        finally:
            record(f"finally {g.tag}")

    return EventStream(source())


@app.route("/sse-async")
async def sse_async():
    async def source():
        try:
            n = 0
            while not count() or n < count():
                n += 1
                yield {"n": n, "tag": g.tag, "path": request.path}
                await asyncio.sleep(tick())
        finally:
            record(f"finally {g.tag}")

    return EventStream(source())


@app.websocket("/ws")
async def ws():
    g.tag = websocket.args.get("t", "-")
    await websocket.accept()
    try:
        async for message in websocket:
            await websocket.send(f"{message} {g.tag}")
    finally:
        record(f"finally {g.tag}")


def sync_job(n: int) -> str:
    job = current_job()
    return f"sync job {n} {request.args['n']} {job is not None}"


async def async_job(n: int) -> str:
    await asyncio.sleep(0)
    return f"async job {n} {request.args['n']}"


@app.route("/spawn")
def spawn() -> dict[str, str]:
    return {
        "sync": app.spawn(sync_job, 1).result(10),
        "async": app.spawn(async_job, 2).result(10),
    }


@app.route("/periodic")
def periodic() -> str:
    return str(ticks)


@app.route("/pid")
def pid() -> str:
    return str(os.getpid())
