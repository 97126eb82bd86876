"""One publish reaching subscribers spread over several uvicorn workers, on
tether's Redis broadcast, on encode/broadcaster's Redis backend (the anchor),
and on the floor: a bare ASGI app whose workers each read the Redis Stream with
one ``XREAD`` loop and write each message to their connections themselves
(``broadcast_apps.FloorApp``), all in the same run.

Half the subscribers hold a WebSocket, half an SSE stream; they run in several
client processes. Each round publishes one message carrying its publish time;
reported are the time until the last subscriber has it (median and p99 over the
rounds, and the median as a ratio to the floor's), the workers' CPU time per
round (all workers together), their memory, the connections the server closed
during the run, and how many messages one process publishes per second: tether
from sync code, and from async code one at a time and 50 coroutines at once
(with the CPU time of one async publish alone), against broadcaster's.

    python bench/broadcast_bench.py [--subscribers 10000] [--workers 4] [--clients 4] [--rounds 20]
    python bench/broadcast_bench.py --only floor --only tether   # a subset, in that order

A message a subscriber has not received within ``--round-timeout`` seconds
(5) counts as lost.
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
APPS = {"floor": "broadcast_apps:floor_app", "tether": "broadcast_apps:tether_app",
        "broadcaster": "broadcast_apps:anchor_app"}
WARMUP_ROUNDS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(port: int, websockets_count: int, sse_count: int, timeout: float) -> None:
    """A client process: connect, say ready, then for each round number read on
    stdin report the slowest latency, how many subscribers had that round's
    message (a lost message is counted, not waited for) and how many
    connections the server has closed so far."""
    import websockets

    arrived: dict[int, list[float]] = {}
    changed = asyncio.Event()
    closed = [0]

    def record(message: str) -> None:
        number, published = (json.loads(message) if message.startswith('"') else message).split()
        arrived.setdefault(int(number), []).append(time.time() - float(published))
        changed.set()

    async def ws_client(connected: asyncio.Queue[None]) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=4, open_timeout=120) as ws:
            await connected.put(None)
            with contextlib.suppress(websockets.ConnectionClosed):
                async for message in ws:
                    record(str(message))
            closed[0] += 1

    async def sse_client(connected: asyncio.Queue[None]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        writer.write(b"GET /sse HTTP/1.1\r\nHost: bench\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await connected.put(None)
        while line := await reader.readline():
            if line.startswith(b"data: "):
                record(line[6:].decode())
        closed[0] += 1

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
        deadline = loop.time() + timeout
        while len(arrived.get(number, ())) < total and loop.time() < deadline:
            changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
        got = arrived.pop(number, [])
        print(json.dumps([max(got, default=None), len(got), closed[0]]), flush=True)
    for task in tasks:
        task.cancel()


def rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) * 1024


def workers(server: int) -> list[int]:
    """The workers: uvicorn's children, or the server itself when it runs one
    worker in its own process."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().split()[3]) == server:
                children.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return children or [server]


def workers_rss(server: int) -> int:
    """The workers' resident memory."""
    return sum(rss(pid) for pid in workers(server))


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of ``pids`` so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run(kind: str, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    module = APPS[kind]
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
                [sys.executable, __file__, "--client", str(port), str(each // 2), str(each - each // 2),
                 str(args.round_timeout)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            ))
        for proc in clients:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        rss_busy = workers_rss(server.pid)
        if kind == "floor":
            import redis

            floor = redis.Redis.from_url(URL)

            def publish(number: int) -> None:
                floor.xadd(f"bench-floor:{channel}", {"m": f"{number} {time.time()}"}, maxlen=1000)
        elif kind == "tether":
            from tether import Broadcast

            broadcast = Broadcast(URL, namespace="broadcast_apps")

            def publish(number: int) -> None:
                broadcast.publish(channel, f"{number} {time.time()}")
        else:
            import redis

            connection = redis.Redis.from_url(URL)

            def publish(number: int) -> None:
                connection.publish(channel, f"{number} {time.time()}")

        closed = [0]

        def one_round(number: int) -> tuple[float, int]:
            """Publish once; the last subscriber's latency and how many had it."""
            publish(number)
            reports = []
            for proc in clients:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{number}\n")
                proc.stdin.flush()
                reports.append(json.loads(proc.stdout.readline()))
            closed[0] = sum(c for _, _, c in reports)
            last = max((last for last, _, _ in reports if last is not None), default=args.round_timeout)
            return last, sum(n for _, n, _ in reports)

        warmup = 0
        while one_round(warmup)[1] < each * args.clients and warmup < WARMUP_ROUNDS:
            warmup += 1  # a subscription made just after its handshake may not be in place yet
        lasts, lost = [], 0
        pids = workers(server.pid)
        cpu = cpu_seconds(pids)
        for number in range(warmup + 1, warmup + 1 + args.rounds):
            last, delivered = one_round(number)
            lasts.append(last)
            lost += each * args.clients - delivered
            time.sleep(0.2)
        cpu = cpu_seconds(pids) - cpu
        lasts.sort()
        rates = publish_rates(kind, channel) if kind != "floor" else {}
        return {
            "median_ms": statistics.median(lasts) * 1000,
            "p99_ms": lasts[min(len(lasts) - 1, int(len(lasts) * 0.99))] * 1000,
            "cpu_ms": cpu / args.rounds * 1000,
            "rss_idle_mib": rss_idle / 2**20,
            "rss_busy_mib": rss_busy / 2**20,
            "lost": lost,
            "closed": closed[0],
            **rates,
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

        redis.Redis.from_url(URL).delete(f"tether:broadcast_apps:broadcast:{channel}", f"bench-floor:{channel}")


def publish_rates(kind: str, channel: str, count: int = 3000, together: int = 50) -> dict[str, float]:
    """Messages one process publishes per second: tether's from sync code
    (``publish``), and from async code one at a time and ``together``
    coroutines at once, with the CPU time of one async publish alone."""
    rates: dict[str, float] = {}
    if kind == "tether":
        from tether import Broadcast

        broadcast = Broadcast(URL, namespace="broadcast_apps")
        started = time.perf_counter()
        for n in range(count):
            broadcast.publish(channel + "-rate", str(n))
        rates["publish_sync"] = count / (time.perf_counter() - started)

    async def measure() -> None:
        if kind == "tether":
            publish = broadcast.apublish
        else:
            from broadcaster import Broadcast as Broadcaster

            broadcaster = Broadcaster(URL)
            await broadcaster.connect()
            publish = broadcaster.publish
        await publish(channel + "-rate", "connect")
        started, cpu = time.perf_counter(), time.process_time()
        for n in range(count):
            await publish(channel + "-rate", str(n))
        rates["publish_alone"] = count / (time.perf_counter() - started)
        rates["publish_cpu_us"] = (time.process_time() - cpu) / count * 1e6

        async def publisher(first: int) -> None:
            for n in range(first, count, together):
                await publish(channel + "-rate", str(n))

        started = time.perf_counter()
        await asyncio.gather(*(publisher(first) for first in range(together)))
        rates["publish_together"] = count / (time.perf_counter() - started)
        if kind != "tether":
            await broadcaster.disconnect()

    asyncio.run(measure())
    import redis

    redis.Redis.from_url(URL).delete(f"tether:broadcast_apps:broadcast:{channel}-rate")
    return rates


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        port, websockets_count, sse_count = map(int, sys.argv[2:5])
        asyncio.run(client(port, websockets_count, sse_count, float(sys.argv[5])))
        return
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--round-timeout", type=float, default=ROUND_TIMEOUT,
                        help="seconds a subscriber may take before its message counts as lost")
    parser.add_argument("--only", action="append", choices=list(APPS), help="run these, in this order")
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers (half WebSocket, half SSE) on {args.workers} uvicorn workers, "
          f"{args.clients} client processes, {args.rounds} rounds; load average {load()}\n")
    print(f"{'':12} {'last, median':>12} {'p99':>8} {'x floor':>7} {'CPU/round':>10} {'idle':>7} {'clients':>8} "
          f"{'lost':>5} {'closed':>6}", flush=True)
    results: dict[str, dict[str, float]] = {}
    for kind in args.only or list(APPS):
        r = results[kind] = run(kind, args)
        floor = results.get("floor")
        ratio = f"{r['median_ms'] / floor['median_ms']:>6.2f}x" if floor else f"{'':>7}"
        print(f"{kind:12} {r['median_ms']:>10.0f}ms {r['p99_ms']:>6.0f}ms {ratio} {r['cpu_ms']:>8.0f}ms "
              f"{r['rss_idle_mib']:>4.0f}MiB {r['rss_busy_mib']:>5.0f}MiB {r['lost']:>5} {r['closed']:>6}"
              f"   (load {load()})", flush=True)
    print(f"\n{'publish/s':12} {'sync':>8} {'async':>8} {'50 at once':>10} {'CPU/publish':>12}")
    for kind, r in results.items():
        if "publish_alone" in r:
            sync = f"{r['publish_sync']:>8,.0f}" if "publish_sync" in r else f"{'':>8}"
            print(f"{kind:12} {sync} {r['publish_alone']:>8,.0f} {r['publish_together']:>10,.0f} "
                  f"{r['publish_cpu_us']:>10.0f}µs")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
