"""What a ``join`` costs while the process follows few or many channels.

For each backend and each number of channels already followed in the process
(by one ``subscribe_many``), a subscription joins fresh channels one after
the other. Reported, median and p99 over the joins:

- ``join()``: how long the call takes;
- ``join→message``: from the join until a message published on the joined
  channel (by another broadcast, as another process would; on ``memory://``
  by the same one) reaches the subscriber;
- ``message``: from a publish on a channel followed all along until it arrives.

    python bench/join_bench.py [--followed 10 10000] [--joins 200] [--backends memory redis]

Redis is the one of ``BROADCAST_URL`` (default ``redis://127.0.0.1:6379/0``), in
a namespace of the run's own whose keys are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

from tether.live.broadcast import Broadcast

URL = os.environ.get("BROADCAST_URL", "redis://127.0.0.1:6379/0")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) * 1e3:7.3f} ms, p99 {p99 * 1e3:7.3f} ms"


def run(backend: str, followed: int, joins: int, namespace: str) -> dict[str, list[float]]:
    def make() -> Broadcast:
        return Broadcast(URL, namespace=namespace, maxsize=10) if backend == "redis" else Broadcast(maxsize=10)

    broadcast = make()
    publisher = make() if backend == "redis" else broadcast
    prefix = f"{followed}:"
    started = time.perf_counter()
    background = broadcast.subscribe_many([f"{prefix}followed:{n}" for n in range(followed)])
    setup = time.perf_counter() - started
    print(f"  {backend}: following {followed} channels took {setup:.2f} s to set up")
    results: dict[str, list[float]] = {"join()": [], "join→message": [], "message": []}
    with broadcast.subscribe_many([f"{prefix}steady"]) as subscription:
        for n in range(joins):
            channel = f"{prefix}joined:{n}"
            start = time.perf_counter()
            subscription.join(channel)
            joined = time.perf_counter()
            publisher.publish(channel, n)
            delivery = next(subscription)
            arrived = time.perf_counter()
            assert delivery.channel == channel and delivery.message == n, delivery
            subscription.leave(channel)
            results["join()"].append(joined - start)
            results["join→message"].append(arrived - start)
            start = time.perf_counter()
            publisher.publish(f"{prefix}steady", n)
            delivery = next(subscription)
            results["message"].append(time.perf_counter() - start)
    background.close()
    return results


def cleanup(namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(URL)
    keys = list(client.scan_iter(match=f"tether:{namespace}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--followed", type=int, nargs="+", default=[10, 10_000])
    parser.add_argument("--joins", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["memory", "redis"])
    args = parser.parse_args()
    namespace = f"joinbench{uuid.uuid4().hex[:8]}"
    try:
        for backend in args.backends:
            for followed in args.followed:
                results = run(backend, followed, args.joins, namespace)
                for name, samples in results.items():
                    print(f"{backend:6} followed={followed:6} {name:13} {percentiles(samples)}")
    finally:
        if "redis" in args.backends:
            cleanup(namespace)


if __name__ == "__main__":
    main()
