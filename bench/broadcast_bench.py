"""One publish reaching subscribers spread over several uvicorn workers, on
tether's Redis broadcast and on encode/broadcaster's Redis backend (the anchor),
in the same run.

Half the subscribers hold a WebSocket, half an SSE stream; they run in several
client processes. Each round publishes one message carrying its publish time;
reported are the time until the last subscriber has it (median and p99 over the
rounds), the workers' memory, and how many messages one process publishes per
second.

    python bench/broadcast_bench.py [--subscribers 10000] [--workers 4] [--clients 4] [--rounds 20]

Not finished: the anchor's run (``--only broadcaster``) does not complete yet in
the multi-worker setup, so by default only tether is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
URL = os.environ.get("BROADCAST_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(port: int, websockets_count: int, sse_count: int, rounds: int) -> None:
    """A client process: connect, say ready, then report each round's latencies."""
    import websockets

    async def ws_client(queue: asyncio.Queue[float]) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=4, open_timeout=60) as ws:
            await queue.put(-1.0)
            for _ in range(rounds):
                message = await ws.recv()
                await queue.put(time.time() - float(message))

    async def sse_client(queue: asyncio.Queue[float]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        writer.write(b"GET /sse HTTP/1.1\r\nHost: bench\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await queue.put(-1.0)
        got = 0
        while got < rounds:
            line = await reader.readline()
            if line.startswith(b"data: "):
                await queue.put(time.time() - float(line[6:]))
                got += 1
        writer.close()

    queue: asyncio.Queue[float] = asyncio.Queue()
    tasks = [asyncio.ensure_future(ws_client(queue)) for _ in range(websockets_count)]
    tasks += [asyncio.ensure_future(sse_client(queue)) for _ in range(sse_count)]
    total = websockets_count + sse_count
    for _ in range(total):
        await queue.get()
    print("ready", flush=True)
    for _ in range(rounds):
        latencies = [await queue.get() for _ in range(total)]
        print(json.dumps(max(latencies)), flush=True)
    await asyncio.gather(*tasks)


def rss_of_children(parent: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().split()
            if int(stat[3]) == parent:
                status = (entry / "status").read_text()
                total += int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) * 1024
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total


def run(kind: str, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    module = "broadcast_apps:tether_app" if kind == "tether" else "broadcast_apps:anchor_app"
    channel = f"bench-{kind}-{os.getpid()}"
    env = {**os.environ, "PYTHONPATH": f"{HERE}:{HERE.parent / 'src'}", "BROADCAST_URL": URL, "BENCH_CHANNEL": channel}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--port", str(port), "--workers", str(args.workers), "--log-level",
         "warning", "--backlog", "20000", module],
        cwd=HERE, env=env,
    )
    clients: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(2)  # every worker up
        rss_idle = rss_of_children(server.pid)
        each = args.subscribers // args.clients
        for _ in range(args.clients):
            clients.append(subprocess.Popen(
                [sys.executable, __file__, "--client", str(port), str(each // 2), str(each - each // 2), str(args.rounds)],
                stdout=subprocess.PIPE, text=True, env=env,
            ))
        for proc in clients:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(2)  # subscriptions made after the handshake settle
        rss_busy = rss_of_children(server.pid)
        if kind == "tether":
            from tether import Broadcast

            broadcast = Broadcast(URL)

            def publish() -> None:
                broadcast.publish(channel, time.time())
        else:
            import redis

            connection = redis.Redis.from_url(URL)

            def publish() -> None:
                connection.publish(channel, str(time.time()))
        lasts = []
        for _ in range(args.rounds):
            publish()
            lasts.append(max(float(proc.stdout.readline()) for proc in clients))  # type: ignore[union-attr]
            time.sleep(0.2)
        lasts.sort()
        throughput = publish_rate(kind, channel)
        return {
            "median_ms": statistics.median(lasts) * 1000,
            "p99_ms": lasts[min(len(lasts) - 1, int(len(lasts) * 0.99))] * 1000,
            "rss_idle_mib": rss_idle / 2**20,
            "rss_busy_mib": rss_busy / 2**20,
            "publish_per_s": throughput,
        }
    finally:
        for proc in clients:
            proc.kill()
        server.terminate()
        server.wait(30)
        import redis

        redis.Redis.from_url(URL).delete(f"tether:broadcast:{channel}")


def publish_rate(kind: str, channel: str, count: int = 5000) -> float:
    """Messages one process publishes per second (async, one at a time)."""

    async def main() -> float:
        if kind == "tether":
            from tether import Broadcast

            broadcast = Broadcast(URL)
            started = time.perf_counter()
            for n in range(count):
                await broadcast.apublish(channel + "-rate", n)
        else:
            from broadcaster import Broadcast as Broadcaster

            broadcaster = Broadcaster(URL)
            await broadcaster.connect()
            started = time.perf_counter()
            for n in range(count):
                await broadcaster.publish(channel + "-rate", str(n))
            await broadcaster.disconnect()
        return count / (time.perf_counter() - started)

    rate = asyncio.run(main())
    import redis

    redis.Redis.from_url(URL).delete(f"tether:broadcast:{channel}-rate")
    return rate


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, websockets_count, sse_count, rounds = map(int, sys.argv[2:6])
        asyncio.run(client(port, websockets_count, sse_count, rounds))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", action="append", choices=["tether", "broadcaster"])
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers (half WebSocket, half SSE) on {args.workers} uvicorn workers, "
          f"{args.clients} client processes, {args.rounds} rounds\n")
    print(f"{'':14} {'last, median':>12} {'last, p99':>10} {'workers idle':>12} {'with clients':>12} {'publish/s':>10}")
    for kind in args.only or ("tether",):
        r = run(kind, args)
        print(f"{kind:14} {r['median_ms']:>10.0f}ms {r['p99_ms']:>8.0f}ms {r['rss_idle_mib']:>9.0f}MiB "
              f"{r['rss_busy_mib']:>9.0f}MiB {r['publish_per_s']:>10,.0f}")


if __name__ == "__main__":
    main()
