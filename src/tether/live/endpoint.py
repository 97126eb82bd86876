"""The app-served live endpoint (``app.live("/live")``): one WebSocket route
where a browser joins and leaves channels, a Server-Sent Events fallback, and
the browser client that speaks to both (``url_for("live.client")``).

Over the WebSocket the client sends ``{"join": channel, "last_id": id}`` and
``{"leave": channel}``; it receives ``{"event": "joined", "channel",
"position"}`` for each join (the id the channel is followed from: what to
resume from while nothing came; what the join replays may come before it:
the join runs off the loop), with ``"members"`` when the connection is present
there (``app.live(..., presence=who)``: ``tether.live.attendance``),
``{"event": "refused", "channel"}`` where the
channel rules say no, ``{"event": "left", "channel"}``, and one ``{"channel",
"id", "event", "data"}`` per message (``{"channel", "event": "gap",
"last_id"}`` when the history no longer held what was missed).

The fallback, ``GET .../events?channels=a&channels=b``, streams the same
channels as SSE, resumed from ``Last-Event-ID`` (a browser's own reconnect)
or from ``?last_ids=`` (the encoded id of ``tether.live.broadcast.last_ids``).
An SSE stream cannot be told anything once open, so the client joins or
leaves by reconnecting with the new set of channels and their last ids: a
cost per change, fine for a fallback. A stream is present in its channels
for as long as it is open.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import typing as t
from importlib.resources import files

from ..application.blueprints import BlueprintBase
from ..application.wrappers import Response
from ..contexts.globals import current_app, request, websocket
from ..serving.lifecycle import ServingState
from .attendance import Attendance, Who
from .broadcast import Broadcast
from .channels import LIVE_ONLY, REFUSED, ChannelPolicy, refusal
from .presence import Presence
from .sse import EventStream, ServerSentEvent

__all__ = ["CLIENT_SCRIPT", "live_blueprint"]

T = t.TypeVar("T")

#: The browser client, plain JavaScript (``tether/live/static/tether-live.js``).
CLIENT_SCRIPT = "tether-live.js"


def live_blueprint(name: str = "live", presence: Who | None = None) -> BlueprintBase:
    """The endpoint's blueprint: ``/ws``, ``/events`` and ``/client.js``
    under the prefix it is registered with; ``presence`` says whether, and as
    whom, a connection is present in each channel it joins."""
    blueprint = BlueprintBase(name, __name__)

    async def socket() -> None:
        await _socket(presence)

    def events() -> EventStream:
        return _events(presence)

    blueprint.websocket("/ws", endpoint="socket")(socket)
    blueprint.get("/events", endpoint="events")(events)
    blueprint.get("/client.js", endpoint="client")(_client)
    return blueprint


class LiveApp(t.Protocol):
    """The app as the endpoint uses it: ``tether.Tether``."""

    channel_policy: ChannelPolicy
    serving: ServingState

    @property
    def broadcast(self) -> Broadcast: ...

    @property
    def presence(self) -> Presence: ...


def _app() -> LiveApp:
    return t.cast(LiveApp, current_app._get_current_object())


def _attendance(app: LiveApp, who: Who | None) -> Attendance | None:
    return None if who is None else Attendance(who, app.presence)


async def _socket(who: Who | None) -> None:
    app = _app()
    attendance = _attendance(app, who)
    connection = _Connection(app, websocket._get_current_object(), attendance)
    try:
        await connection.socket.relay(connection.subscription, on_receive=connection.receive)
    finally:
        if attendance is not None:
            await attendance.aleave_all()


class _Connection:
    """One WebSocket of the endpoint: the channels it follows, and is present in."""

    def __init__(self, app: LiveApp, socket: t.Any, attendance: Attendance | None) -> None:
        self.app = app
        self.socket = socket
        self.policy = app.channel_policy
        self.subscription = app.broadcast.subscribe_many()
        self.policy.checked(self.subscription)
        self.attendance = attendance
        self.loop = asyncio.get_running_loop()

    def off_loop(self, fn: t.Callable[..., T], *args: t.Any) -> asyncio.Future[T]:
        """``fn(*args)`` in the app's pool, in this connection's context: a
        join's round trips to Redis and a sync channel rule (a database
        query, say) never hold the loop, and every other connection, up."""
        return self.app.serving.executor.run(self.loop, contextvars.copy_context().run, fn, *args)

    async def receive(self, message: str | bytes) -> None:
        try:
            command = json.loads(message)
        except ValueError:
            command = None
        if not isinstance(command, dict):
            await self.socket.send_json({"event": "error", "data": "send {'join': channel} or {'leave': channel}"})
            return
        channel = command.get("join", command.get("leave"))
        if not isinstance(channel, str):
            await self.socket.send_json({"event": "error", "data": "a channel is a string"})
        elif "leave" in command:
            await self.leave(channel)
        else:
            await self.join(channel, command.get("last_id"))

    async def leave(self, channel: str) -> None:
        self.subscription.leave(channel)
        if self.attendance is not None:
            await self.attendance.aleave(channel)
        await self.socket.send_json({"event": "left", "channel": channel})

    async def join(self, channel: str, last_id: t.Any) -> None:
        access = await self.policy.aaccess(channel, self.off_loop)
        if access is REFUSED:
            await self.socket.send_json(refusal(channel))
            return
        if access is LIVE_ONLY or not isinstance(last_id, str):
            last_id = None
        # The position comes from the join itself: the relay may take (and
        # send) the channel's first messages before the join returns here.
        position = await self.off_loop(self.subscription.join, channel, last_id)
        if position is None:  # followed already
            position = self.subscription.last_ids.get(channel)
        joined: dict[str, t.Any] = {"event": "joined", "channel": channel, "position": position}
        if self.attendance is not None:  # entered once following: its own join event comes too
            members = await self.attendance.aenter(channel, self.off_loop)
            if members is not None:
                joined["members"] = members
        await self.socket.send_json(joined)


def _events(who: Who | None) -> EventStream:
    app = _app()
    channels = request.args.getlist("channels")
    last_ids = request.headers.get("Last-Event-ID") or request.args.get("last_ids")
    subscription, refused = app.channel_policy.subscribe(app.broadcast, channels, last_ids)
    attendance = _attendance(app, who)
    first = [ServerSentEvent(refusal(channel), event="refused") for channel in refused]
    try:
        for channel, position in subscription.last_ids.items():
            joined: dict[str, t.Any] = {"channel": channel, "position": position}
            members = attendance.enter(channel) if attendance is not None else None
            if members is not None:
                joined["members"] = members
            first.append(ServerSentEvent(joined, event="joined"))
        stream = EventStream(subscription, first=first)
    except BaseException:
        subscription.close()
        if attendance is not None:
            attendance.leave_all()
        raise
    if attendance is not None:  # present for as long as the stream is open
        stream.call_on_close(attendance.leave_all)
    return stream


def _client() -> Response:
    script = files("tether.live").joinpath("static", CLIENT_SCRIPT).read_text("utf-8")
    response = Response(script, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response
