"""The Redis listener's cost per message: CPU time of a process that follows
``--channels`` channels on a ``redis://`` broadcast (one subscription, not
consumed, holding what arrives) while a publisher in another process adds
``--messages`` messages one at a time into random channels.

What a worker of ``bench/rooms_bench.py`` pays for every message published to
any of its rooms, before the fan-out to its connections: the read, the reply,
the hand-over. Uses database 9 of the Redis on 127.0.0.1:6379 and deletes only
its own keys.

    PYTHONPATH=src python bench/listener_bench.py [--channels 200] [--messages 2000] [--interval 0.002]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
import typing as t

import redis

from tether import Broadcast

URL = "redis://127.0.0.1:6379/9"
NAMESPACE = "listener_bench"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def publish(channels: int, messages: int, interval: float) -> None:
    client = redis.Redis.from_url(URL)
    for n in range(messages):
        fields: dict[t.Any, t.Any] = {"m": json.dumps({"n": n, "pad": "x" * 32})}
        client.xadd(f"tether:{NAMESPACE}:broadcast:room:{random.randrange(channels)}", fields, maxlen=100)
        time.sleep(interval)


def listen(args: argparse.Namespace) -> None:
    broadcast = Broadcast(URL, namespace=NAMESPACE, maxsize=args.messages + 1)
    subscription = broadcast.subscribe_many([f"room:{i}" for i in range(args.channels)])
    time.sleep(1)  # every shard reads
    before, started = cpu_seconds(), time.monotonic()
    publisher = subprocess.Popen([sys.executable, __file__, "--publish", "--channels", str(args.channels),
                                  "--messages", str(args.messages), "--interval", str(args.interval)])
    while len(subscription.queued()) < args.messages and time.monotonic() - started < 60 + args.messages * 0.01:
        time.sleep(0.1)
    spent, got = cpu_seconds() - before, len(subscription.queued())
    publisher.wait()
    subscription.close()
    client = redis.Redis.from_url(URL)
    keys = list(client.scan_iter(match=f"tether:{NAMESPACE}:*", count=1000))
    if keys:
        client.delete(*keys)
    print(f"{args.channels} channels followed: {got}/{args.messages} messages received, "
          f"{spent / max(got, 1) * 1e6:.0f} µs of this process's CPU per message")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=0.002, help="seconds between two publishes")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish(args.channels, args.messages, args.interval)
    else:
        listen(args)


if __name__ == "__main__":
    main()
