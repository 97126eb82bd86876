"""The browser client (``app.live``'s ``client.js``) in a real headless Chromium,
against uvicorn on Redis: joins, refusals, and a server killed and restarted
mid-stream, over the WebSocket and over the SSE fallback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import FLAGS, SHARED, free_port, need_redis, wait_for_port

ROOT = Path(__file__).parent.parent


@pytest.fixture
def redis_url() -> str:
    need_redis()
    return SHARED


class Server:
    """uvicorn serving tests/servers/live_client_app.py, on one port across restarts."""

    def __init__(self, url: str, namespace: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'servers'}:{ROOT / 'src'}",
            "BROADCAST_URL": url, "BROADCAST_NAMESPACE": namespace,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--port", str(self.port), "live_client_app:app"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture
def server(redis_url: str) -> Iterator[Server]:
    server = Server(redis_url, f"test-live-client-{uuid.uuid4().hex}")
    server.start()
    yield server
    if server.proc is not None and server.proc.poll() is None:
        server.kill()


@pytest.mark.parametrize("transport", ["auto", "sse"])
def test_client_resumes_every_channel_across_a_server_restart(
    server: Server, chromium_path: str, transport: str  # noqa: F811
) -> None:
    from playwright.sync_api import sync_playwright

    from tether.live.broadcast import Broadcast

    channels = ["room:a", "room:b é"]
    broadcast = Broadcast(SHARED, namespace=server.env["BROADCAST_NAMESPACE"])
    query = "&".join(f"join={c}" for c in [*channels, "room:secret"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.port}/?{query}&transport={transport}")
            page.wait_for_function("window.joined.length === 2 && window.refused.length === 1", timeout=20_000)
            assert page.evaluate("window.refused") == ["room:secret"]
            assert page.evaluate("window.transports") == ["sse" if transport == "sse" else "websocket"]

            def publish(start: int, stop: int) -> None:
                for n in range(start, stop):
                    for channel in channels:
                        broadcast.publish(channel, n, event="chat" if n % 2 else None)

            def wait_for(count: int) -> None:
                page.wait_for_function(f"window.received.length >= {2 * count}", timeout=30_000)

            publish(0, 5)
            wait_for(5)
            server.kill()
            publish(5, 10)  # while no server is up: kept in the channels' history
            server.start()
            publish(10, 15)
            wait_for(15)
            page.wait_for_timeout(300)  # a duplicate would come now, if at all
            received = page.evaluate("window.received")
            for channel in channels:
                assert [n for c, n in received if c == channel] == list(range(15)), channel
            assert len(received) == 30
            assert page.evaluate("window.gaps") == []
            assert len(page.evaluate("window.transports")) >= 2  # it did reconnect
        finally:
            browser.close()
