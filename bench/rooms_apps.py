"""The servers of ``bench/rooms_bench.py``: a WebSocket per client, in one of
many rooms, each fed by whatever is published to its room on Redis.

Each is written the way its documentation shows:

- tether: a route per room whose connection relays a subscription to its
  room's channel on a ``redis://`` broadcast (``websocket.relay``).
- python-socketio: an ``AsyncServer`` with ``AsyncRedisManager``; the client
  names its room in the connect packet and the handler enters it.
- Django Channels: an ``AsyncWebsocketConsumer`` that joins its room's group on
  ``channels_redis``'s ``RedisPubSubChannelLayer`` (``ROOMS_CHANNELS_LAYER=core``:
  ``RedisChannelLayer``), and sends on what the group receives.

Only the app uvicorn asks for is built (a module ``__getattr__``), so a worker
imports the one framework it serves. ``ROOMS_URL`` is the Redis to use (each
framework has its own database there).
"""

from __future__ import annotations

import os
import typing as t

URL = os.environ.get("ROOMS_URL", "redis://127.0.0.1:6379/13")
#: tether's BROADCAST_NAMESPACE: the publishers' ``Broadcast(url, namespace=...)`` names it too.
NAMESPACE = "rooms_bench"
#: python-socketio's Redis channel (its default name, in this bench's own database).
SOCKETIO_CHANNEL = "socketio"


def tether_app() -> t.Any:
    from tether import Tether, websocket

    app = Tether(__name__)
    app.config["BROADCAST_URL"] = URL
    app.config["BROADCAST_NAMESPACE"] = NAMESPACE

    @app.websocket("/ws/<int:room>")
    async def room(room: int) -> None:
        await websocket.relay(app.broadcast.subscribe(f"room:{room}"))

    return app


def socketio_app() -> t.Any:
    import socketio

    sio = socketio.AsyncServer(
        async_mode="asgi", client_manager=socketio.AsyncRedisManager(URL, channel=SOCKETIO_CHANNEL)
    )

    @sio.event
    async def connect(sid: str, environ: dict[str, t.Any], auth: dict[str, t.Any] | None) -> None:
        await sio.enter_room(sid, f"room:{(auth or {})['room']}")

    return socketio.ASGIApp(sio)


def channels_app() -> t.Any:
    import django
    from django.conf import settings

    core = os.environ.get("ROOMS_CHANNELS_LAYER") == "core"
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer" if core else "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [URL]},
        }},
    )
    django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import path

    class Room(AsyncWebsocketConsumer):  # type: ignore[misc]
        async def connect(self) -> None:
            self.room = f"room.{self.scope['url_route']['kwargs']['room']}"
            await self.channel_layer.group_add(self.room, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(self.room, self.channel_name)

        async def room_message(self, event: dict[str, t.Any]) -> None:
            await self.send(text_data=event["text"])

    return ProtocolTypeRouter({"websocket": URLRouter([path("ws/<int:room>/", Room.as_asgi())])})


BUILDERS = {"tether": tether_app, "socketio": socketio_app, "channels": channels_app}


def __getattr__(name: str) -> t.Any:
    """``rooms_apps:tether`` (and ``socketio``, ``channels``): that framework's
    ASGI app, built on first use."""
    if name not in BUILDERS:
        raise AttributeError(name)
    app = BUILDERS[name]()
    globals()[name] = app
    return app
