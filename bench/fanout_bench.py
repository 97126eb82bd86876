"""One uvicorn worker holding 1,000 SSE clients and 1,000 WebSocket connections;
one message published to all of them. Reports the time until the last client
has it, and the worker's memory (RSS) before and with the clients connected.

    python bench/fanout_bench.py [--sse 1000] [--ws 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def sse_client(port: int, ready: asyncio.Event, got: list[float], connected: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /feed HTTP/1.1\r\nHost: bench\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    connected.append(1)
    while True:
        line = await reader.readline()
        if b"data: go" in line:
            got.append(time.perf_counter())
            break
    writer.close()


async def ws_client(port: int, got: list[float], connected: list[int]) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=4) as ws:
        connected.append(1)
        message = await ws.recv()
        if message == "go":
            got.append(time.perf_counter())


async def one_round(port: int, n_sse: int, n_ws: int) -> tuple[float, int, int]:
    got: list[float] = []
    connected: list[int] = []
    ready = asyncio.Event()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        while (await http.get("/stats")).json()["subscribers"]:
            await asyncio.sleep(0.2)  # the previous round's clients are still being let go
        tasks = [asyncio.ensure_future(sse_client(port, ready, got, connected)) for _ in range(n_sse)]
        tasks += [asyncio.ensure_future(ws_client(port, got, connected)) for _ in range(n_ws)]
        while True:
            stats = (await http.get("/stats")).json()
            if stats["subscribers"] >= n_sse + n_ws:
                break
            await asyncio.sleep(0.2)
        start = time.perf_counter()
        sent = (await http.post("/publish", content="go")).json()["sent"]
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        rss_connected = stats["rss_kib"]
    return max(got) - start, sent, rss_connected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sse", type=int, default=1000)
    parser.add_argument("--ws", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "src")])}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fanout_app:app", "--port", str(port), "--log-level", "warning",
         "--backlog", "4096", "--ws-max-queue", "4"],
        env=env, cwd=HERE,
    )
    try:
        for _ in range(100):
            try:
                baseline = httpx.get(f"http://127.0.0.1:{port}/stats").json()["rss_kib"]
                break
            except httpx.TransportError:
                time.sleep(0.1)
        results = [asyncio.run(one_round(port, args.sse, args.ws)) for _ in range(args.rounds)]
    finally:
        server.terminate()
        server.wait(30)
    latencies = [r[0] * 1000 for r in results]
    print(f"{args.sse} SSE clients + {args.ws} WebSockets on one uvicorn worker, {args.rounds} rounds")
    print(f"delivered to {results[-1][1]} subscribers per round")
    print(f"time until the last client had the message: median {statistics.median(latencies):.1f} ms "
          f"(rounds: {', '.join(f'{x:.1f}' for x in latencies)})")
    print(f"worker RSS: {baseline / 1024:.1f} MiB idle, {max(r[2] for r in results) / 1024:.1f} MiB with all clients connected")


if __name__ == "__main__":
    main()
