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
    python bench/broadcast_bench.py --interleave --subscribers 6000   # every server up, rounds in turn
    python bench/broadcast_bench.py --publish-only --only tether      # publish rates alone

A message a subscriber has not received within ``--round-timeout`` seconds
(5) counts as lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing as t
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


class Setup:
    """One kind's server, its client processes and its publisher, kept up
    while the other kinds' rounds run in between (``--interleave``)."""

    def __init__(self, kind: str, args: argparse.Namespace) -> None:
        self.kind, self.args = kind, args
        self.port = free_port()
        self.channel = f"bench-{kind}-{os.getpid()}"
        self.env = {**os.environ, "PYTHONPATH": f"{HERE}:{HERE.parent / 'src'}", "BROADCAST_URL": URL,
                    "BENCH_CHANNEL": self.channel}
        self.clients: list[subprocess.Popen[str]] = []
        self.lasts: list[float] = []
        self.lost = self.closed = 0
        self.cpu = 0.0
        self.server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--port", str(self.port), "--workers", str(args.workers),
             "--log-level", "warning", "--backlog", "20000", APPS[kind]],
            cwd=HERE, env=self.env,
        )

    def connect(self) -> None:
        """Wait for the server, connect the clients, then warm up: a
        subscription made just after its handshake may not be in place yet."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(2)  # every worker up
        self.rss_idle = workers_rss(self.server.pid)
        self.each = self.args.subscribers // self.args.clients
        for _ in range(self.args.clients):
            self.clients.append(subprocess.Popen(
                [sys.executable, __file__, "--client", str(self.port), str(self.each // 2),
                 str(self.each - self.each // 2), str(self.args.round_timeout)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env,
            ))
        for proc in self.clients:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        self.rss_busy = workers_rss(self.server.pid)
        self.pids = workers(self.server.pid)
        self.publish = publisher(self.kind, self.channel)
        self.number = 0
        while self.one_round()[1] < self.each * self.args.clients and self.number < WARMUP_ROUNDS:
            pass

    def one_round(self) -> tuple[float, int]:
        """Publish once; the last subscriber's latency and how many had it."""
        self.number += 1
        self.publish(self.number)
        reports = []
        for proc in self.clients:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"{self.number}\n")
            proc.stdin.flush()
            reports.append(json.loads(proc.stdout.readline()))
        self.closed = sum(c for _, _, c in reports)
        last = max((last for last, _, _ in reports if last is not None), default=self.args.round_timeout)
        return last, sum(n for _, n, _ in reports)

    def measured_round(self) -> None:
        cpu = cpu_seconds(self.pids)
        last, delivered = self.one_round()
        self.cpu += cpu_seconds(self.pids) - cpu
        self.lasts.append(last)
        self.lost += self.each * self.args.clients - delivered

    def result(self) -> dict[str, float]:
        lasts = sorted(self.lasts)
        return {
            "median_ms": statistics.median(lasts) * 1000,
            "p99_ms": lasts[min(len(lasts) - 1, int(len(lasts) * 0.99))] * 1000,
            "cpu_ms": self.cpu / len(lasts) * 1000,
            "rss_idle_mib": self.rss_idle / 2**20,
            "rss_busy_mib": self.rss_busy / 2**20,
            "lost": self.lost,
            "closed": self.closed,
        }

    def close(self) -> None:
        for proc in self.clients:
            proc.kill()
        self.server.terminate()
        try:
            self.server.wait(30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            for pid in getattr(self, "pids", []):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        import redis

        redis.Redis.from_url(URL).delete(f"tether:broadcast_apps:broadcast:{self.channel}", f"bench-floor:{self.channel}")


def publisher(kind: str, channel: str) -> t.Callable[[int], None]:
    """Publishes round ``number`` with its publish time, as each kind's app expects it."""
    import redis

    from tether import Broadcast

    broadcast = Broadcast(URL, namespace="broadcast_apps")
    connection = redis.Redis.from_url(URL)

    def publish(number: int) -> None:
        message = f"{number} {time.time()}"
        if kind == "tether":
            broadcast.publish(channel, message)
        elif kind == "floor":
            connection.xadd(f"bench-floor:{channel}", {"m": message}, maxlen=1000)
        else:
            connection.publish(channel, message)

    return publish


def run(kinds: list[str], args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Each kind's rounds: one kind after another, or (``--interleave``) with
    every kind's server up, a round of each in turn."""
    results: dict[str, dict[str, float]] = {}
    groups = [] if args.publish_only else [kinds] if args.interleave else [[kind] for kind in kinds]
    for group in groups:
        setups: list[Setup] = []
        try:
            for kind in group:
                setups.append(Setup(kind, args))
                setups[-1].connect()
            for _ in range(args.rounds):
                for setup in setups:
                    setup.measured_round()
                    time.sleep(0.2)
            for setup in setups:
                results[setup.kind] = setup.result()
                report(setup.kind, results)
        finally:
            for setup in setups:
                setup.close()
    rates: dict[str, list[dict[str, float]]] = {}
    for _ in range(3):  # in turn, each figure the median of three
        for kind in kinds:
            if kind != "floor":
                rates.setdefault(kind, []).append(publish_rates(kind, f"bench-{kind}-{os.getpid()}"))
    for kind, runs in rates.items():
        results.setdefault(kind, {}).update({key: statistics.median(run[key] for run in runs) for key in runs[0]})
    return results


def report(kind: str, results: dict[str, dict[str, float]]) -> None:
    r, floor = results[kind], results.get("floor")
    ratio = f"{r['median_ms'] / floor['median_ms']:>6.2f}x" if floor else f"{'':>7}"
    cpu_ratio = f"{r['cpu_ms'] / floor['cpu_ms']:>6.2f}x" if floor else f"{'':>7}"
    print(f"{kind:12} {r['median_ms']:>10.0f}ms {r['p99_ms']:>6.0f}ms {ratio} {r['cpu_ms']:>8.0f}ms {cpu_ratio} "
          f"{r['rss_idle_mib']:>4.0f}MiB {r['rss_busy_mib']:>5.0f}MiB {r['lost']:>5} {r['closed']:>6}"
          f"   (load {load()})", flush=True)


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
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers and clients on the way out
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
    parser.add_argument("--interleave", action="store_true",
                        help="keep every kind's server and clients up and take their rounds in turn")
    parser.add_argument("--publish-only", action="store_true", help="only the publish rates (no server)")
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers (half WebSocket, half SSE) on {args.workers} uvicorn workers, "
          f"{args.clients} client processes, {args.rounds} rounds; load average {load()}\n")
    print(f"{'':12} {'last, median':>12} {'p99':>8} {'x floor':>7} {'CPU/round':>10} {'x floor':>7} {'idle':>7} "
          f"{'clients':>8} {'lost':>5} {'closed':>6}", flush=True)
    results = run(args.only or list(APPS), args)
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
