"""The app-served live endpoint (``app.live("/live")``): one WebSocket route
where a browser joins and leaves channels, a Server-Sent Events fallback, and
the browser client that speaks to both (``url_for("live.client")``).

Over the WebSocket the client sends ``{"join": channel, "last_id": id}`` and
``{"leave": channel}``; it receives ``{"event": "joined", "channel",
"position"}`` for each join (the id the channel is followed from: what to
resume from while nothing came; what the join replays may come before it:
the join runs off the loop), ``{"event": "refused", "channel"}`` where the
channel rules say no, ``{"event": "left", "channel"}``, and one ``{"channel",
"id", "event", "data"}`` per message (``{"channel", "event": "gap",
"last_id"}`` when the history no longer held what was missed).

The fallback, ``GET .../events?channels=a&channels=b``, streams the same
channels as SSE, resumed from ``Last-Event-ID`` (a browser's own reconnect)
or from ``?last_ids=`` (the encoded id of ``tether.live.broadcast.last_ids``).
An SSE stream cannot be told anything once open, so the client joins or
leaves by reconnecting with the new set of channels and their last ids: a
cost per change, fine for a fallback.
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
from .broadcast import Broadcast
from .channels import LIVE_ONLY, REFUSED, ChannelPolicy, refusal
from .sse import EventStream, ServerSentEvent

__all__ = ["CLIENT_SCRIPT", "live_blueprint"]

T = t.TypeVar("T")

#: The browser client, plain JavaScript (``tether/live/static/tether-live.js``).
CLIENT_SCRIPT = "tether-live.js"


def live_blueprint(name: str = "live") -> BlueprintBase:
    """The endpoint's blueprint: ``/ws``, ``/events`` and ``/client.js``
    under the prefix it is registered with."""
    blueprint = BlueprintBase(name, __name__)
    blueprint.websocket("/ws", endpoint="socket")(_socket)
    blueprint.get("/events", endpoint="events")(_events)
    blueprint.get("/client.js", endpoint="client")(_client)
    return blueprint


class LiveApp(t.Protocol):
    """The app as the endpoint uses it: ``tether.Tether``."""

    channel_policy: ChannelPolicy
    serving: ServingState

    @property
    def broadcast(self) -> Broadcast: ...


def _app() -> LiveApp:
    return t.cast(LiveApp, current_app._get_current_object())


async def _socket() -> None:
    app = _app()
    policy = app.channel_policy
    socket = websocket._get_current_object()
    subscription = app.broadcast.subscribe_many()
    policy.checked(subscription)
    loop = asyncio.get_running_loop()

    def off_loop(fn: t.Callable[..., T], *args: t.Any) -> asyncio.Future[T]:
        """``fn(*args)`` in the app's pool, in this connection's context: a
        join's round trips to Redis and a sync channel rule (a database
        query, say) never hold the loop, and every other connection, up."""
        return app.serving.executor.run(loop, contextvars.copy_context().run, fn, *args)

    async def on_receive(message: str | bytes) -> None:
        try:
            command = json.loads(message)
        except ValueError:
            command = None
        if not isinstance(command, dict):
            await socket.send_json({"event": "error", "data": "send {'join': channel} or {'leave': channel}"})
            return
        channel = command.get("join", command.get("leave"))
        if not isinstance(channel, str):
            await socket.send_json({"event": "error", "data": "a channel is a string"})
            return
        if "leave" in command:
            subscription.leave(channel)
            await socket.send_json({"event": "left", "channel": channel})
            return
        access = await policy.aaccess(channel, off_loop)
        if access is REFUSED:
            await socket.send_json(refusal(channel))
            return
        last_id = command.get("last_id")
        if access is LIVE_ONLY or not isinstance(last_id, str):
            last_id = None
        # The position comes from the join itself: the relay may take (and
        # send) the channel's first messages before the join returns here.
        position = await off_loop(subscription.join, channel, last_id)
        if position is None:  # followed already
            position = subscription.last_ids.get(channel)
        await socket.send_json({"event": "joined", "channel": channel, "position": position})

    await socket.relay(subscription, on_receive=on_receive)


def _events() -> EventStream:
    app = _app()
    channels = request.args.getlist("channels")
    last_ids = request.headers.get("Last-Event-ID") or request.args.get("last_ids")
    subscription, refused = app.channel_policy.subscribe(app.broadcast, channels, last_ids)
    positions = subscription.last_ids
    first = [ServerSentEvent(refusal(channel), event="refused") for channel in refused]
    first += [
        ServerSentEvent({"channel": channel, "position": position}, event="joined")
        for channel, position in positions.items()
    ]
    return EventStream(subscription, first=first)


def _client() -> Response:
    script = files("tether.live").joinpath("static", CLIENT_SCRIPT).read_text("utf-8")
    response = Response(script, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response
