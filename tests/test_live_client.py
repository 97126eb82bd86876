"""The browser client (``app.live``'s ``client.js``) in a real headless Chromium,
against uvicorn on Redis: joins, refusals, and a server killed and restarted
mid-stream, over the WebSocket and over the SSE fallback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from live_browser import Server
from support import FLAGS, SHARED, need_redis


@pytest.fixture
def redis_url() -> str:
    need_redis()
    return SHARED


@pytest.fixture
def server(redis_url: str) -> Iterator[Server]:
    server = Server(redis_url, f"test-live-client-{uuid.uuid4().hex}")
    server.start()
    yield server
    server.stop()
    server.forget()


@pytest.mark.parametrize("transport", ["auto", "sse"])
def test_client_resumes_every_channel_across_a_server_restart(
    server: Server, chromium_path: str, transport: str
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
