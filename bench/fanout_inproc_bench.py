"""In-process fan-out through the real SSE body, against the floor: ``subscribers``
event streams over one ``memory://`` channel, each sent by the real body pump
(``tether.serving.asgi_http._pump``) to an ASGI ``send`` that never waits (as
uvicorn's does while its transport keeps up); the floor is a publish that calls
each connection's ``send`` in turn, as the bare ASGI app of ``fanout_bench``
does.

Reported: CPU microseconds per message per subscriber (this process's CPU
time, so that other work on the machine counts less), from the publish until
every stream has sent it, for tether's messages sent from the publish (the
direct path), for ones the streams take from their queues (the polled path),
and for the floor; rounds are interleaved. With ``--profile``, one run of the
direct path under cProfile instead.

    python bench/fanout_inproc_bench.py [--subscribers 10000] [--messages 200] [--rounds 5] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import time
import types
import typing as t

from tether.live.broadcast import Broadcast
from tether.live.sse import _frames
from tether.serving.asgi_http import _pump
from tether.serving.direct import current_sender

PATHS = ("direct", "polled", "floor")


async def run(subscribers: int, messages: int, path: str) -> float:
    sent = [0]

    async def send(message: object) -> None:
        sent[0] += 1

    if path == "floor":
        return await run_floor(subscribers, messages, send, sent)
    broadcast = Broadcast("memory://", maxsize=messages + 10)
    app = t.cast(t.Any, types.SimpleNamespace(json=types.SimpleNamespace(dumps=json.dumps)))
    serving = t.cast(t.Any, None)

    async def stream() -> None:
        chunks = _frames(broadcast.subscribe("bench"), 3600, app, [])
        if path == "direct":
            await _pump(chunks, send, None, serving)
            return
        current_sender.set(None)
        async for _ in chunks:  # no direct sender: every message is taken from the queue
            sent[0] += 1

    tasks = [asyncio.ensure_future(stream()) for _ in range(subscribers)]
    while broadcast.subscriber_count("bench") < subscribers:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # every stream is waiting
    start = time.process_time()
    for n in range(messages):
        await broadcast.apublish("bench", {"n": n, "text": "hello"})
        await asyncio.sleep(0)
    while sent[0] < subscribers * messages:
        await asyncio.sleep(0.001)
    elapsed = time.process_time() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed / (subscribers * messages) * 1e6


async def run_floor(subscribers: int, messages: int, send: t.Any, sent: list[int]) -> float:
    """Each connection's ``send``, called in turn by the publish, with a frame encoded once."""
    connections = [send] * subscribers
    start = time.process_time()
    for n in range(messages):
        frame = f"data: {json.dumps({'n': n, 'text': 'hello'})}\n\n".encode()
        for each in connections:
            await each({"type": "http.response.body", "body": frame, "more_body": True})
        await asyncio.sleep(0)
    elapsed = time.process_time() - start
    assert sent[0] == subscribers * messages
    return elapsed / (subscribers * messages) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="profile one run of the direct path")
    args = parser.parse_args()
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(asyncio.run, run(args.subscribers, args.messages, "direct"))
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    times: dict[str, list[float]] = {path: [] for path in PATHS}
    for _ in range(args.rounds):
        for path in PATHS:
            times[path].append(asyncio.run(run(args.subscribers, args.messages, path)))
    floor = statistics.median(times["floor"])
    titles = {"direct": "direct (sent from the publish)", "polled": "polled (taken from the queue)", "floor": "floor (bare sends in turn)"}
    for path in PATHS:
        median = statistics.median(times[path])
        print(f"{titles[path]:<32} {median:.3f} µs per message per subscriber, {median / floor:.2f}x the floor "
              f"(median of {args.rounds}; best {min(times[path]):.3f})")


if __name__ == "__main__":
    main()
