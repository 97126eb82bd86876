"""One publisher process of ``bench/rooms_bench.py``: publishes into random
rooms of its own (room ``r`` with ``r % PUBLISHERS == INDEX``, so each room's
sequence comes from one process, in order) at a set rate, from a plain process,
as each framework's documentation says to publish from outside the server:

- tether: ``Broadcast(url, namespace=...).publish`` (sync, one ``XADD``);
- python-socketio: ``AsyncRedisManager(url, write_only=True).emit(..., room=)``;
- Django Channels: the layer's ``group_send`` (``channels_redis``, the
  server's layer class, made directly: no Django settings needed).

    python rooms_publishers.py FRAMEWORK INDEX PUBLISHERS ROOMS PAD
    stdout: "ready"; per "step NUMBER RATE SECONDS" line on stdin (RATE is this
    process's share), a JSON line: the last sequence number of each room, how
    many were sent and in how many seconds; "quit" (or end of input) ends it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import typing as t

from rooms_apps import NAMESPACE, SOCKETIO_CHANNEL, URL

Publish = t.Callable[[int, str], t.Awaitable[None]]


async def publisher(framework: str) -> tuple[Publish, t.Callable[[], t.Awaitable[None]]]:
    """The framework's publish(room, text), and what closes it."""
    if framework == "tether":
        from tether import Broadcast

        broadcast = Broadcast(URL, namespace=NAMESPACE)

        async def tether_publish(room: int, text: str) -> None:
            broadcast.publish(f"room:{room}", text)

        return tether_publish, nothing_to_close
    if framework == "socketio":
        import socketio

        manager = socketio.AsyncRedisManager(URL, channel=SOCKETIO_CHANNEL, write_only=True)

        async def socketio_publish(room: int, text: str) -> None:
            await manager.emit("msg", text, room=f"room:{room}", namespace="/")

        return socketio_publish, nothing_to_close
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    if os.environ.get("ROOMS_CHANNELS_LAYER") == "core":
        core = RedisChannelLayer(hosts=[URL])
        layer: t.Any = core
        close = core.close_pools
    else:
        pubsub = RedisPubSubChannelLayer(hosts=[URL])
        layer, close = pubsub, pubsub.flush  # the pub/sub layer's flush closes its connections

    async def channels_publish(room: int, text: str) -> None:
        await layer.group_send(f"room.{room}", {"type": "room.message", "text": text})

    return channels_publish, close


async def nothing_to_close() -> None:
    pass


async def one_step(publish: Publish, rooms: list[int], number: int, rate: float, seconds: float,
                   pad: str) -> dict[str, t.Any]:
    """Publish ``rate * seconds`` messages, evenly paced, into random rooms."""
    total = max(int(rate * seconds), 1)
    seqs: dict[int, int] = {}
    start = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while sent < due:
            room = random.choice(rooms)
            seq = seqs[room] = seqs.get(room, 0) + 1
            await publish(room, f"{number} {room} {seq} {time.time():.6f} {pad}")
            sent += 1
        wait = start + sent / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
    return {"finals": seqs, "sent": sent, "seconds": time.monotonic() - start}


async def main(framework: str, index: int, publishers: int, rooms: int, pad: int) -> None:
    mine = [room for room in range(rooms) if room % publishers == index]
    publish, close = await publisher(framework)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    try:
        while True:
            words = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not words or words[0] == "quit":
                break
            number, rate, seconds = int(words[1]), float(words[2]), float(words[3])
            result = await one_step(publish, mine, number, rate, seconds, "x" * pad)
            sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")
            sys.stdout.flush()
    finally:
        await close()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - the bench extra installs it
        pass
    framework, index, publishers, rooms, pad = sys.argv[1:6]
    asyncio.run(main(framework, int(index), int(publishers), int(rooms), int(pad)))
