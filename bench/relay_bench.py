"""Fan-out throughput through ``websocket.relay`` on one uvicorn worker.

Subscribers read as fast as they can; the publisher sends bursts of one queue's
size, each once the subscribers took the last, so nothing is dropped. Reports
messages per second delivered to each subscriber, and in all, for 1, 100 and
1,000 subscribers. The server runs on core 0, the clients on core 1.

    python bench/relay_bench.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets

HERE = Path(__file__).parent
CASES = [(1, 100_000), (100, 10_000), (1000, 1_000)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def subscriber(port: int, n: int, connected: list[int], done: list[float]) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/relay", max_queue=None) as ws:
        connected.append(1)
        for _ in range(n):
            await ws.recv()
        done.append(time.perf_counter())


async def one_round(port: int, subscribers: int, n: int) -> tuple[float, float]:
    connected: list[int] = []
    done: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
        tasks = [asyncio.ensure_future(subscriber(port, n, connected, done)) for _ in range(subscribers)]
        while (await http.get("/subscribers")).json()["subscribers"] < subscribers:
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        result = (await http.post(f"/burst?n={n}")).json()
        await asyncio.gather(*tasks)
    elapsed = max(done) - started
    if result["dropped"]:
        raise SystemExit(f"{result['dropped']} messages were dropped")
    return n / elapsed, subscribers * n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    server = subprocess.Popen(
        [*pin, sys.executable, "-m", "uvicorn", "--port", str(port), "--log-level", "warning", "relay_app:app"],
        cwd=HERE, env={**os.environ, "PYTHONPATH": f"{HERE}:{HERE.parent / 'src'}"},
    )
    if pin:
        os.sched_setaffinity(0, {1})
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        print(f"medians of {args.rounds} rounds; no message dropped\n")
        print(f"{'subscribers':>11}  {'messages':>8}  {'msg/s each':>11}  {'msg/s in all':>12}")
        for subscribers, n in CASES:
            rates = [asyncio.run(one_round(port, subscribers, n)) for _ in range(args.rounds)]
            each = statistics.median(r[0] for r in rates)
            total = statistics.median(r[1] for r in rates)
            print(f"{subscribers:>11}  {n:>8}  {each:>11,.0f}  {total:>12,.0f}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
