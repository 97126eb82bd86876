"""One publish reaching subscribers spread over several uvicorn workers, on
tether's Redis broadcast and on encode/broadcaster's Redis backend (the anchor),
in the same run.

Half the subscribers hold a WebSocket, half an SSE stream; they run in several
client processes. Each round publishes one message carrying its publish time;
reported are the time until the last subscriber has it (median and p99 over the
rounds), the workers' memory, and how many messages one process publishes per
second (one at a time, and 50 coroutines at once).

    python bench/broadcast_bench.py [--subscribers 10000] [--workers 4] [--clients 4] [--rounds 20]

A message a subscriber has not received within five seconds counts as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
ROUND_TIMEOUT = 5.0
WARMUP_ROUNDS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(port: int, websockets_count: int, sse_count: int) -> None:
    """A client process: connect, say ready, then for each round number read on
    stdin report the slowest latency and how many subscribers had that round's
    message (a lost message is counted, not waited for)."""
    import websockets

    arrived: dict[int, list[float]] = {}
    changed = asyncio.Event()

    def record(message: str) -> None:
        number, published = (json.loads(message) if message.startswith('"') else message).split()
        arrived.setdefault(int(number), []).append(time.time() - float(published))
        changed.set()

    async def ws_client(connected: asyncio.Queue[None]) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=4, open_timeout=120) as ws:
            await connected.put(None)
            async for message in ws:
                record(str(message))

    async def sse_client(connected: asyncio.Queue[None]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        writer.write(b"GET /sse HTTP/1.1\r\nHost: bench\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await connected.put(None)
        while line := await reader.readline():
            if line.startswith(b"data: "):
                record(line[6:].decode())

    connected: asyncio.Queue[None] = asyncio.Queue()
    total = websockets_count + sse_count
    tasks = [asyncio.ensure_future(ws_client(connected)) for _ in range(websockets_count)]
    tasks += [asyncio.ensure_future(sse_client(connected)) for _ in range(sse_count)]
    for _ in range(total):
        await connected.get()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        number = int(line)
        deadline = loop.time() + ROUND_TIMEOUT
        while len(arrived.get(number, ())) < total and loop.time() < deadline:
            changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
        got = arrived.pop(number, [])
        print(json.dumps([max(got, default=None), len(got)]), flush=True)
    for task in tasks:
        task.cancel()


def rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) * 1024


def workers_rss(server: int) -> int:
    """The workers' resident memory: uvicorn's children, or the server itself
    when it runs one worker in its own process."""
    total, children = 0, 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().split()[3]) == server:
                total += rss(int(entry.name))
                children += 1
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return total if children else rss(server)


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
        rss_idle = workers_rss(server.pid)
        each = args.subscribers // args.clients
        for _ in range(args.clients):
            clients.append(subprocess.Popen(
                [sys.executable, __file__, "--client", str(port), str(each // 2), str(each - each // 2)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            ))
        for proc in clients:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        rss_busy = workers_rss(server.pid)
        if kind == "tether":
            from tether import Broadcast

            broadcast = Broadcast(URL, namespace="broadcast_apps")

            def publish(number: int) -> None:
                broadcast.publish(channel, f"{number} {time.time()}")
        else:
            import redis

            connection = redis.Redis.from_url(URL)

            def publish(number: int) -> None:
                connection.publish(channel, f"{number} {time.time()}")

        def one_round(number: int) -> tuple[float, int]:
            """Publish once; the last subscriber's latency and how many had it."""
            publish(number)
            reports = []
            for proc in clients:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{number}\n")
                proc.stdin.flush()
                reports.append(json.loads(proc.stdout.readline()))
            return max((last for last, _ in reports if last is not None), default=ROUND_TIMEOUT), sum(n for _, n in reports)

        warmup = 0
        while one_round(warmup)[1] < each * args.clients and warmup < WARMUP_ROUNDS:
            warmup += 1  # a subscription made just after its handshake may not be in place yet
        lasts, lost = [], 0
        for number in range(warmup + 1, warmup + 1 + args.rounds):
            last, delivered = one_round(number)
            lasts.append(last)
            lost += each * args.clients - delivered
            time.sleep(0.2)
        lasts.sort()
        alone, together = publish_rates(kind, channel)
        return {
            "median_ms": statistics.median(lasts) * 1000,
            "p99_ms": lasts[min(len(lasts) - 1, int(len(lasts) * 0.99))] * 1000,
            "rss_idle_mib": rss_idle / 2**20,
            "rss_busy_mib": rss_busy / 2**20,
            "publish_alone": alone,
            "publish_together": together,
            "lost": lost,
        }
    finally:
        for proc in clients:
            proc.kill()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        import redis

        redis.Redis.from_url(URL).delete(f"tether:broadcast_apps:broadcast:{channel}")


def publish_rates(kind: str, channel: str, count: int = 5000, together: int = 50) -> tuple[float, float]:
    """Messages one process publishes per second from async code: one at a
    time, and ``together`` coroutines publishing at once."""

    async def main() -> tuple[float, float]:
        if kind == "tether":
            from tether import Broadcast

            broadcast = Broadcast(URL, namespace="broadcast_apps")
            publish = broadcast.apublish
        else:
            from broadcaster import Broadcast as Broadcaster

            broadcaster = Broadcaster(URL)
            await broadcaster.connect()
            publish = broadcaster.publish
        started = time.perf_counter()
        for n in range(count):
            await publish(channel + "-rate", str(n))
        alone = count / (time.perf_counter() - started)

        async def publisher(first: int) -> None:
            for n in range(first, count, together):
                await publish(channel + "-rate", str(n))

        started = time.perf_counter()
        await asyncio.gather(*(publisher(first) for first in range(together)))
        concurrent = count / (time.perf_counter() - started)
        if kind != "tether":
            await broadcaster.disconnect()
        return alone, concurrent

    rates = asyncio.run(main())
    import redis

    redis.Redis.from_url(URL).delete(f"tether:broadcast_apps:broadcast:{channel}-rate")
    return rates


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, websockets_count, sse_count = map(int, sys.argv[2:5])
        asyncio.run(client(port, websockets_count, sse_count))
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
    print(f"{'':14} {'last, median':>12} {'last, p99':>10} {'workers idle':>12} {'with clients':>12} {'publish/s':>10} {'50 at once':>10} {'lost':>6}", flush=True)
    for kind in args.only or ("tether", "broadcaster"):
        r = run(kind, args)
        print(f"{kind:14} {r['median_ms']:>10.0f}ms {r['p99_ms']:>8.0f}ms {r['rss_idle_mib']:>9.0f}MiB "
              f"{r['rss_busy_mib']:>9.0f}MiB {r['publish_alone']:>10,.0f} {r['publish_together']:>10,.0f} {r['lost']:>6}", flush=True)


if __name__ == "__main__":
    main()
