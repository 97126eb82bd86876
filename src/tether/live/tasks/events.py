"""A task's story on the broadcast: ``progress(data)`` from inside the task,
then one final event (``success`` with the result, ``failure`` with a safe
message, or ``revoked``), all on the channel ``task:<id>`` with history; and
:func:`task_events`, the SSE stream of that story for a view to return.

A late subscriber, or a reloaded page sending ``Last-Event-ID``, gets what it
has not seen yet from the history, then follows live until the final event.
The history of a finished task is forgotten after ``CELERY_PROGRESS_TTL``.
"""

from __future__ import annotations

import typing as t

from celery import current_task

from ...contexts.ctx import _cv_app, _cv_request
from ...typing import ContextApp
from ..broadcast import Broadcast, Gap
from ..sse import EventStream, ServerSentEvent, gap_event

__all__ = ["FINAL_EVENTS", "FAILURE_MESSAGE", "channel", "finish", "progress", "task_events"]

#: The events that end a task's story.
FINAL_EVENTS = ("success", "failure", "revoked")
#: What a browser is told of a failure: the exception itself stays in the worker's log.
FAILURE_MESSAGE = "The task failed."


class BroadcastingApp(ContextApp, t.Protocol):
    """An app with a broadcast (``tether.Tether`` is one)."""

    json: t.Any

    @property
    def broadcast(self) -> Broadcast: ...


def channel(task_id: str) -> str:
    """The broadcast channel of a task's story."""
    return f"task:{task_id}"


def progress(data: t.Any) -> str:
    """Publish ``data`` (JSON) as the running task's progress; the event's id."""
    task = current_task
    ctx = _cv_app.get(None)
    if task is None or not task.request.id or ctx is None:
        raise RuntimeError(
            "progress() was called outside a Celery task running in the app: call it in the body (or a hook) "
            "of a task of the Celery app bound with tether.celery.init_celery(app)."
        )
    app = t.cast(BroadcastingApp, ctx.app)
    return app.broadcast.publish(channel(task.request.id), {"event": "progress", "data": data})


def finish(app: BroadcastingApp, task_id: str, event: str, data: t.Any = None) -> None:
    """End a task's story with a final event, and let its history expire."""
    name = channel(task_id)
    try:
        app.broadcast.publish(name, {"event": event, "data": data})
    except TypeError:  # a result that is not JSON: the end is told without it
        app.broadcast.publish(name, {"event": event, "data": None})
    app.broadcast.expire(name, app.config["CELERY_PROGRESS_TTL"])


def task_events(task_id: str, last_id: str | None = None) -> EventStream:
    """An SSE response with the task's story: what is in the history after
    ``last_id`` (by default the request's ``Last-Event-ID``, else from the
    start), then what comes live, ending after the final event. Events are
    named ``progress``, ``success``, ``failure`` or ``revoked`` (``gap`` when
    the history no longer holds what came after ``last_id``); their data is
    JSON."""
    if last_id is None:
        request_ctx = _cv_request.get(None)
        last_id = (request_ctx.request.last_event_id if request_ctx is not None else None) or "0-0"
    app = t.cast(BroadcastingApp, _cv_app.get().app)
    dumps = app.json.dumps  # every event's data is JSON, strings included: one way to read them
    subscription = app.broadcast.subscribe(channel(task_id), last_id=last_id)

    async def story() -> t.AsyncIterator[ServerSentEvent]:
        try:
            async for message in subscription:
                if isinstance(message, Gap):
                    yield gap_event(message)
                    continue
                event = message.get("event", "progress") if isinstance(message, dict) else "progress"
                data = message.get("data") if isinstance(message, dict) else message
                yield ServerSentEvent(dumps(data), event=event, id=subscription.last_id)
                if event in FINAL_EVENTS:
                    return
        finally:
            subscription.close()

    return EventStream(story())
