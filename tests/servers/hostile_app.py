"""An app for tests/test_hostile.py: what a hostile client or a careless user
sends, served by uvicorn and gunicorn. What views saw is written to $EVENTS_FILE."""

import os
import time

from tether import EventStream, Response, Tether, abort, current_job, request, websocket

EVENTS = os.environ["EVENTS_FILE"]

app = Tether(__name__)
app.config.update(
    MAX_CONTENT_LENGTH=65536,
    SYNC_THREADS=4,
    WEBSOCKET_SYNC_THREADS=int(os.environ.get("WEBSOCKET_SYNC_THREADS", "64")),
    WEBSOCKET_MAX_MESSAGE_SIZE=65536,
    TRUSTED_HOSTS=["127.0.0.1", "localhost"],
    SPAWN_GRACE_PERIOD=0.5,
)


def record(line: str) -> None:
    with open(EVENTS, "a") as f:
        f.write(line + "\n")


def read_body() -> bytes:
    try:
        data = request.get_data()
    except Exception as e:
        record(f"refused {request.path} {type(e).__name__}")
        raise
    record(f"seen {request.path} {len(data)}")
    return data


@app.post("/length")
def length() -> str:
    return str(len(read_body()))


@app.post("/async-length")
async def async_length() -> str:
    return str(len(read_body()))


@app.get("/sync")
def sync_view() -> str:
    return "sync ok"


@app.post("/stream-json")
def stream_json() -> Response:
    def generate():
        data = request.json
        if "name" not in data:
            abort(400, "name is required")
        yield f"hello {data['name']}\n"

    return Response(generate(), mimetype="text/plain")


@app.errorhandler(LookupError)
def lookup_error(e: LookupError) -> tuple[str, int]:
    return "no such thing", 404


@app.get("/stream-lookup")
def stream_lookup() -> Response:
    def generate():
        yield {}["missing"]

    return Response(generate(), mimetype="text/plain")


@app.get("/stream-fails-later")
def stream_fails_later() -> Response:
    def generate():
        yield "first chunk\n"
        raise RuntimeError("the generator broke after its first chunk")

    return Response(generate(), mimetype="text/plain")


@app.get("/events-fail")
def events_fail() -> EventStream:
    def source():
        yield {"n": 1}
        raise RuntimeError("the event source broke")

    return EventStream(source())


@app.teardown_websocket
def teardown_websocket(exc):
    record(f"teardown ws {websocket.path}")


@app.websocket("/ws/idle")
def idle() -> None:
    websocket.accept()
    for message in websocket:
        websocket.send(message)


@app.websocket("/ws/json")
async def json_echo() -> None:
    while True:
        data = await websocket.receive_json()
        await websocket.send_json(data)


@app.websocket("/ws/echo")
async def echo() -> None:
    async for message in websocket:
        await websocket.send(message)


@app.teardown_appcontext
def teardown_job(exc):
    job = current_job()
    if job is not None:
        record(f"teardown job {job.name.rpartition('.')[2]}")


def cooperative() -> None:
    record("job cooperative started")
    while not current_job().cancel_requested:
        time.sleep(0.01)


def stubborn() -> None:
    record("job stubborn started")
    time.sleep(3)


@app.post("/spawn")
def spawn() -> str:
    app.spawn(cooperative)
    app.spawn(stubborn)
    return "spawned"
