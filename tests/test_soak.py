"""Soak: mixed traffic over real uvicorn and gunicorn servers, with streams and
sockets that clients abandon midway. Each request and socket is torn down
exactly once, no request sees another's ``g``, no context is left current on a
server thread or task, thread and task counts come back, and memory stays flat.

Bounded for CI; ``SOAK_REQUESTS=100000 pytest tests/test_soak.py -s`` runs
the long version and prints the figures.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import socket
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from support import Server, wait_for

PYTHON = sys.executable
COMMANDS = {
    "uvicorn": [PYTHON, "-m", "uvicorn", "--port", "{port}", "soak_app:app"],
    "gunicorn": [
        PYTHON, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "8",
        "soak_app:app",
    ],
}
REQUESTS = int(os.environ.get("SOAK_REQUESTS", "4000"))
CONCURRENCY = 24
#: How much the worker's RSS may grow between a warm-up and the end of the soak.
RSS_MARGIN = 24 * 1024 * 1024


async def abandon_after_first_chunk(port: int, path: str) -> int:
    """The status of a streamed response, abandoned after its first bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    await reader.read(16)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset, no FIN
    writer.close()
    return int(head.split(b" ", 2)[1])


async def drop_a_websocket(port: int, rid: int) -> None:
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws?id={rid}")
    await ws.send("ping")
    assert await ws.recv() == f"{rid} ping"
    ws.transport.abort()  # gone without a close frame


async def soak(port: int, count: int, first_id: int, websockets_too: bool) -> collections.Counter[str]:
    kinds = ["hello"] * 50 + ["echo"] * 15 + ["stream"] * 15 + ["events"] * 10 + ["ws" if websockets_too else "stream"] * 10
    done: collections.Counter[str] = collections.Counter()
    ids = iter(range(first_id, first_id + count))
    rng = random.Random(first_id)

    async def worker(http: httpx.AsyncClient) -> None:
        for rid in ids:
            kind = rng.choice(kinds)
            status = 101
            if kind == "hello":
                response = await http.get(f"/hello?id={rid}")
                status = response.status_code
                assert response.text == f"hello {rid}"
            elif kind == "echo":
                response = await http.post(f"/echo?id={rid}", json={"n": rid})
                status = response.status_code
                assert response.json() == {"id": str(rid), "data": {"n": rid}}
            elif kind == "ws":
                await drop_a_websocket(port, rid)
            else:
                status = await abandon_after_first_chunk(port, f"/{kind}?id={rid}")
            done[kind] += 1
            done["5xx"] += status >= 500

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    return done


def state(port: int) -> dict[str, int]:
    return httpx.get(f"http://127.0.0.1:{port}/state", timeout=10).json()


@pytest.mark.parametrize("server_name", list(COMMANDS))
def test_soak(server_name: str, tmp_path: Path) -> None:
    server = Server(COMMANDS[server_name], tmp_path)
    try:
        websockets_too = server_name == "uvicorn"
        warmup = max(200, REQUESTS // 5)
        asyncio.run(soak(server.port, warmup, 0, websockets_too))
        wait_for(lambda: torn_down(server, range(warmup)), timeout=60)
        before = state(server.port)
        first = 1_000_000
        done = asyncio.run(soak(server.port, REQUESTS, first, websockets_too))
        wait_for(lambda: torn_down(server, range(first, first + REQUESTS)), timeout=120)
        after = state(server.port)
    finally:
        server.stop()
    lines = server.lines()
    assert [line for line in lines if not line.startswith("teardown ")] == []
    per_id = collections.Counter(line for line in lines if line != "teardown None")
    assert [line for line, n in per_id.items() if n > 1] == []
    assert done["5xx"] == 0
    assert after["threads"] <= before["threads"]
    assert after["tasks"] <= before["tasks"]
    assert after["rss"] - before["rss"] < RSS_MARGIN
    report = {
        "server": server_name, "requests": REQUESTS, **done, "rss_before_mib": round(before["rss"] / 2**20, 1),
        "rss_after_mib": round(after["rss"] / 2**20, 1), "threads": [before["threads"], after["threads"]],
        "tasks": [before["tasks"], after["tasks"]],
    }
    print(json.dumps(report))


def torn_down(server: Server, ids: range) -> bool:
    """Whether every request of ``ids`` was torn down (at least once)."""
    seen = set(server.lines())
    return all(f"teardown {rid}" in seen for rid in ids)
