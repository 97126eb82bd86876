"""Several apps in one process, mounted with DispatcherMiddleware, over WSGI and ASGI."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx
import websockets
from werkzeug.test import Client

from support import Servers

SERVERS = Path(__file__).parent / "servers"
sys.path.insert(0, str(SERVERS))

import mounted_app  # noqa: E402


def test_mounted_apps_over_wsgi() -> None:
    client = Client(mounted_app.app)
    assert client.get("/").json == {"app": "frontend", "self": "/", "path": "/"}
    assert client.get("/backend/").json == {"app": "backend", "self": "/backend/", "users": "/backend/users"}
    assert client.get("/backend/users").json == {"app": "backend", "users": ["ada", "grace"]}
    assert client.get("/missing").status_code == 404


def test_mounted_apps_over_asgi_with_websockets_and_lifespan(serve: Servers, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    port = serve(
        [sys.executable, "-m", "uvicorn", "--port", "{port}", "mounted_app:app"],
        cwd=SERVERS,
        env={"EVENTS_FILE": str(events)},
    )
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/").json() == {"app": "frontend", "self": "/", "path": "/"}
    assert httpx.get(f"{base}/backend/").json() == {"app": "backend", "self": "/backend/", "users": "/backend/users"}
    assert httpx.get(f"{base}/backend/users").json()["app"] == "backend"

    async def socket() -> str:
        async with websockets.connect(f"ws://127.0.0.1:{port}/backend/ws") as ws:
            return str(await ws.recv())

    app_name, url = asyncio.run(socket()).split()
    # Werkzeug builds a WebSocket rule's URL as ws://, with the mount prefix
    assert app_name == "backend" and url == f"ws://127.0.0.1:{port}/backend/ws"
    server = serve.procs[-1]
    server.send_signal(signal.SIGTERM)
    server.wait(30)
    lines = events.read_text().splitlines()
    assert sorted(lines) == ["backend started", "backend stopped", "frontend started", "frontend stopped"]
