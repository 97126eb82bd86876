"""The chat example under real ASGI servers, with real clients (websockets, httpx)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import typing as t
from pathlib import Path

import httpx
import pytest
import websockets

from support import Servers, wait_for, wait_for_lines

ROOT = Path(__file__).parent.parent
SERVERS = Path(__file__).parent / "servers"
UVICORN = [sys.executable, "-m", "uvicorn", "--port", "{port}", "live_app:app"]


@pytest.fixture
def live(serve: Servers, tmp_path: Path) -> tuple[str, Path, object]:
    events = tmp_path / "events.txt"
    port = serve(UVICORN, cwd=SERVERS, env={"EVENTS_FILE": str(events), "PYTHONPATH": f"{SERVERS}:{ROOT}:{ROOT / 'src'}"})
    return f"127.0.0.1:{port}", events, serve


def test_chat_in_one_process_on_memory_over_websockets_and_sse(live: tuple[str, Path, object]) -> None:
    """The chat example on ``memory://``: a message reaches a WebSocket client and
    an SSE one, and joining the room's presence channel puts its person in the room."""
    host, _, _ = live

    async def main() -> tuple[dict[str, t.Any], dict[str, t.Any], list[str]]:
        async with httpx.AsyncClient(base_url=f"http://{host}", timeout=10) as ada, httpx.AsyncClient(
            base_url=f"http://{host}", timeout=10
        ) as bob:
            for client, name in ((ada, "ada"), (bob, "bob")):
                assert (await client.post("/", data={"name": name})).status_code == 302
            cookie = {"Cookie": "; ".join(f"{k}={v}" for k, v in bob.cookies.items())}
            async with bob.stream("GET", "/live/events", params={"channels": "room:lobby"}) as feed, websockets.connect(
                f"ws://{host}/live/ws", additional_headers=cookie
            ) as live:
                assert feed.headers["content-type"].startswith("text/event-stream")
                await live.send(json.dumps({"join": "room:lobby"}))
                assert json.loads(await live.recv())["event"] == "joined"
                await live.send(json.dumps({"join": "here:lobby"}))
                joined: dict[str, t.Any] = {}
                while joined.get("event") != "joined":  # its own join event may come first
                    joined = json.loads(await live.recv())
                assert joined["members"] == [{"member": "bob", "meta": {"name": "bob"}}]
                members: list[str] = []
                while members != ["bob"]:
                    members = (await ada.get("/api/rooms/lobby/members")).json()["members"]
                assert (await ada.post("/api/rooms/lobby/messages", json={"text": "hello bob"})).status_code == 201
                over_socket = json.loads(await live.recv())
                while over_socket.get("event") == "presence":  # its own join, if it came after the reply
                    over_socket = json.loads(await live.recv())
                async for line in feed.aiter_lines():
                    if line.startswith("data: ") and "hello bob" in line:
                        return over_socket, json.loads(line[6:]), members
        raise AssertionError("the feed ended")

    over_socket, over_sse, members = asyncio.run(asyncio.wait_for(main(), 30))
    assert over_socket["channel"] == "room:lobby" and over_socket["event"] == "chat"
    assert {k: over_socket["data"][k] for k in ("author", "text")} == {"author": "ada", "text": "hello bob"}
    assert over_sse == {"channel": "room:lobby", "data": over_socket["data"]}
    assert members == ["bob"]


def test_client_vanishing_mid_stream_and_mid_socket(live: tuple[str, Path, object]) -> None:
    host, events, _ = live
    address, port = host.split(":")
    sock = socket.create_connection((address, int(port)))
    sock.sendall(b"GET /ticks HTTP/1.1\r\nHost: x\r\n\r\n")
    received = b""
    while received.count(b"tick") < 3:
        received += sock.recv(4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    assert wait_for_lines(events, 2) == ["finally /ticks", "teardown /ticks"]

    async def vanish() -> None:
        ws = await websockets.connect(f"ws://{host}/hold")
        await ws.send("x")
        assert await ws.recv() == "x"
        ws.transport.abort()  # no close frame: the client just disappears

    asyncio.run(vanish())
    lines = wait_for_lines(events, 4)
    assert lines[2:] == ["finally /hold", "teardown ws /hold"]
    assert httpx.get(f"http://{host}/ping").text == "pong"
    assert wait_for_lines(events, 5)[4] == "teardown /ping"
    assert lines.count("teardown ws /hold") == 1


def test_sync_view_that_sleeps_does_not_block_async_views(live: tuple[str, Path, object]) -> None:
    host, events, _ = live

    async def main() -> list[str]:
        order: list[str] = []
        async with httpx.AsyncClient(timeout=10) as client:
            async def fetch(path: str) -> None:
                response = await client.get(f"http://{host}{path}")
                order.append(response.text)

            slow = asyncio.ensure_future(fetch("/slow"))
            # The sync view holds a thread until /release: the pings, async
            # views, are answered meanwhile unless that thread blocks them.
            await asyncio.to_thread(wait_for, lambda: events.exists() and "slow started" in events.read_text().splitlines())
            await asyncio.gather(*(fetch("/ping") for _ in range(5)))
            order.append("pings done")
            await client.get(f"http://{host}/release")
            await slow
        return order

    assert asyncio.run(main()) == ["pong"] * 5 + ["pings done", "slow"]


def test_graceful_shutdown_with_open_streams_and_sockets(serve: Servers, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    env = {"EVENTS_FILE": str(events), "PYTHONPATH": f"{SERVERS}:{ROOT}:{ROOT / 'src'}"}
    port = serve(UVICORN, cwd=SERVERS, env=env)
    server = serve.procs[-1]
    host = f"127.0.0.1:{port}"

    async def main() -> int | None:
        async with httpx.AsyncClient(timeout=30) as http, http.stream("GET", f"http://{host}/ticks") as stream:
            ws = await websockets.connect(f"ws://{host}/hold")
            lines = stream.aiter_lines()
            await lines.__anext__()
            server.send_signal(signal.SIGTERM)
            async for _ in lines:
                pass
            try:
                await ws.recv()
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            return 0

    assert asyncio.run(main()) == 1012
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    lines = events.read_text().splitlines()
    assert sorted(lines) == sorted(["finally /ticks", "teardown /ticks", "finally /hold", "teardown ws /hold", "after_serving"])


def test_hypercorn_serves_the_same_object_over_asgi(serve: Servers, tmp_path: Path) -> None:
    env = {"EVENTS_FILE": str(tmp_path / "events.txt"), "PYTHONPATH": f"{SERVERS}:{ROOT}:{ROOT / 'src'}"}
    port = serve([sys.executable, "-m", "hypercorn", "--bind", "127.0.0.1:{port}", "live_app:app"], cwd=SERVERS, env=env)

    async def main() -> tuple[str, str]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/hold") as ws:
            await ws.send("over hypercorn")
            echoed = await ws.recv()
        async with httpx.AsyncClient() as client:
            pong = (await client.get(f"http://127.0.0.1:{port}/ping")).text
        return str(echoed), pong

    assert asyncio.run(main()) == ("over hypercorn", "pong")
