"""In-process fan-out through the real SSE body: ``subscribers`` event streams
over one ``memory://`` channel, each sending through a direct sender whose
``send`` never waits (as uvicorn's does while its transport keeps up).

Reported: CPU microseconds per message per subscriber (this process's CPU
time, so that other work on the machine counts less), from the publish until
every stream has sent it, for messages sent from the publish (the direct path)
and for ones the streams take from their queues (the polled path).

    python bench/fanout_inproc_bench.py [--subscribers 10000] [--messages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import types
import typing as t

from tether.live.broadcast import Broadcast
from tether.live.sse import _frames
from tether.serving.direct import DirectSender, current_sender


async def run(subscribers: int, messages: int, direct: bool) -> float:
    broadcast = Broadcast("memory://", maxsize=messages + 10)
    app = t.cast(t.Any, types.SimpleNamespace(json=types.SimpleNamespace(dumps=json.dumps)))
    sent = [0]

    async def send(message: object) -> None:
        sent[0] += 1

    async def stream() -> None:
        if direct:
            current_sender.set(DirectSender(send, lambda data: data))
        async for _ in _frames(broadcast.subscribe("bench"), 3600, app):
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for direct in (True, False):
        times = [asyncio.run(run(args.subscribers, args.messages, direct)) for _ in range(args.rounds)]
        path = "direct (sent from the publish)" if direct else "polled (taken from the queue)"
        print(f"{path}: {statistics.median(times):.3f} µs per message per subscriber (median of {args.rounds}; best {min(times):.3f})")


if __name__ == "__main__":
    main()
