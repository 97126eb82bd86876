"""An app for tests/test_broadcast_ids.py: a broadcast feed and a task's
story, each resuming from the request's ``Last-Event-ID``."""

import os

from tether import EventStream, Tether, request
from tether.celery import task_events

app = Tether(__name__)
app.config["BROADCAST_URL"] = os.environ.get("BROADCAST_URL", "memory://")


@app.get("/feed/<channel>")
def feed(channel: str) -> EventStream:
    return EventStream(app.broadcast.subscribe(channel, last_id=request.last_event_id))


@app.get("/tasks/<task_id>/events")
def events(task_id: str) -> EventStream:
    return task_events(task_id)
