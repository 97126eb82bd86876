"""A live board: notes sent over a WebSocket, reports built in the background
and a clock, shown to every open page at once over Server-Sent Events."""

from __future__ import annotations

import time

from tether import EventStream, Tether, current_app, current_job, render_template, request, websocket

app = Tether(__name__)
app.config.from_mapping(TICK_SECONDS=5.0, REPORT_STEP_SECONDS=0.5)
app.config.from_prefixed_env()  # TETHER_TICK_SECONDS=1 in the environment, and so on


@app.get("/")
def index() -> str:
    return render_template("board.html")


# -- step 2: the board, over Server-Sent Events --
@app.get("/events")
def events() -> EventStream:
    # Every message published on "board", from the one after the browser's
    # Last-Event-ID when it reconnects: nothing is lost or shown twice.
    return EventStream(app.broadcast.subscribe("board", last_id=request.last_event_id))


# -- step 3: notes, over a WebSocket --
@app.websocket("/notes")
async def notes() -> None:
    name = websocket.args.get("name", "someone")
    await websocket.accept()
    async for text in websocket:
        message_id = await app.broadcast.apublish("board", {"kind": "note", "by": name, "text": text})
        await websocket.send_json({"posted": message_id})


# -- step 4: a report, built in the background --
@app.post("/reports")
def start_report() -> tuple[dict[str, str], int]:
    job = app.spawn(build_report)
    return {"job": job.name}, 202


def build_report() -> int:
    size = int(request.json["size"])  # a copy of the request that spawned the job
    for step in range(1, size + 1):
        if current_job().cancel_requested:  # the server is stopping
            break
        time.sleep(current_app.config["REPORT_STEP_SECONDS"])
        current_app.broadcast.publish("board", {"kind": "report", "step": step, "of": size})
    return size


# -- step 5: a clock, a periodic service --
@app.periodic(app.config["TICK_SECONDS"], name="clock")
def clock() -> None:
    current_app.broadcast.publish("board", {"kind": "tick", "at": time.strftime("%H:%M:%S")})
