"""The browser client in a real headless Chromium with a TCP proxy between it
and uvicorn on Redis, which drops every connection mid-stream (reset or closed)
and refuses new ones for a while: over the WebSocket and over the SSE fallback,
each message arrives exactly once and in order, and a client away for longer
than the history holds is told of the gap, then goes on."""

from __future__ import annotations

import threading
import time
import typing as t
import uuid
from collections.abc import Iterator

import pytest

from live_browser import Proxy, Server
from support import FLAGS, SHARED, need_redis

CHANNELS = ["room:a", "room:b é"]


def _redis() -> str:
    need_redis()
    return SHARED


@pytest.fixture
def proxied() -> Iterator[t.Callable[..., tuple[Server, Proxy]]]:
    """Starts the app (``config`` as its environment: ``BROADCAST_HISTORY="5"``)
    on Redis, in a namespace of its own, and a proxy in front of it."""
    started: list[Server | Proxy] = []

    def start(**config: str) -> tuple[Server, Proxy]:
        server = Server(_redis(), f"test-live-proxy-{uuid.uuid4().hex}", BROADCAST_QUEUE_SIZE="1000", **config)
        started.append(server)
        server.start()
        proxy = Proxy(server.port)
        started.append(proxy)
        return server, proxy

    yield start
    for each in reversed(started):
        each.stop()
    for each in started:
        if isinstance(each, Server):
            each.forget()


class Page:
    """A page of the app, seen through the proxy, following ``CHANNELS``."""

    def __init__(self, browser: t.Any, proxy: Proxy, transport: str) -> None:
        self.page = browser.new_page()
        query = "&".join(f"join={channel}" for channel in CHANNELS)
        self.page.goto(f"http://127.0.0.1:{proxy.port}/?{query}&transport={transport}")
        self.page.wait_for_function(f"window.joined.length === {len(CHANNELS)}", timeout=20_000)

    def wait_for(self, expression: str) -> None:
        self.page.wait_for_function(expression, timeout=30_000)

    def value(self, expression: str) -> t.Any:
        return self.page.evaluate(expression)


def publisher(server: Server) -> t.Any:
    from tether.live.broadcast import Broadcast

    # Redis trims a channel's history where it is published: as the app would.
    history = int(server.env.get("BROADCAST_HISTORY", "1000"))
    broadcast = Broadcast(server.env["BROADCAST_URL"], namespace=server.env["BROADCAST_NAMESPACE"], history=history)

    def publish(start: int, stop: int, pause: float = 0.0) -> None:
        for n in range(start, stop):
            for channel in CHANNELS:
                broadcast.publish(channel, n, event="chat" if n % 2 else None)
            if pause:
                time.sleep(pause)  # pacing only: messages keep flowing while the test cuts

    return publish


def per_channel(log: list[list[t.Any]]) -> dict[str, list[t.Any]]:
    return {channel: [item for c, item in log if c == channel] for channel in CHANNELS}


@pytest.mark.parametrize("transport", ["auto", "sse"])
def test_every_message_once_and_in_order_through_dropped_connections(
    proxied: t.Callable[..., tuple[Server, Proxy]], chromium_path: str, transport: str
) -> None:
    from playwright.sync_api import sync_playwright

    server, proxy = proxied()
    total = 240
    publish = publisher(server)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            page = Page(browser, proxy, transport)
            flowing = threading.Thread(target=publish, args=(0, total, 0.01))
            flowing.start()
            try:
                # Cut while messages flow, each time once the page has had some
                # more: by reset, by close, then by reset with new connections
                # refused until the client has tried again.
                for step, (reset, refuse) in enumerate([(True, False), (False, False), (True, True), (False, True)]):
                    page.wait_for(f"window.received.length >= {2 * (step + 1) * total // 6}")
                    refused = proxy.refused
                    proxy.refusing = refuse
                    assert proxy.cut(reset=reset) >= 1
                    if refuse:
                        proxy.wait_for_refusal(refused)
                        proxy.refusing = False
            finally:
                flowing.join()
            page.wait_for(f"window.received.length >= {2 * total}")
            page.page.wait_for_timeout(300)  # a duplicate would come now, if at all
            got = per_channel(page.value("window.log"))
            for channel in CHANNELS:
                assert got[channel] == list(range(total)), channel
            assert page.value("window.gaps") == []
            assert len(page.value("window.transports")) >= 5  # it reconnected after each cut
            assert set(page.value("window.transports")) == {"sse" if transport == "sse" else "websocket"}
        finally:
            browser.close()


@pytest.mark.parametrize("transport", ["auto", "sse"])
def test_a_gap_is_reported_then_the_client_goes_on(
    proxied: t.Callable[..., tuple[Server, Proxy]], chromium_path: str, transport: str
) -> None:
    from playwright.sync_api import sync_playwright

    # Redis trims a stream in whole nodes (100 entries by default): far more
    # than the history of 5 is published while the client is kept away.
    server, proxy = proxied(BROADCAST_HISTORY="5")
    away = 400
    publish = publisher(server)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            page = Page(browser, proxy, transport)
            publish(0, 5)
            page.wait_for("window.received.length >= 10")
            refused = proxy.refused
            proxy.refusing = True
            assert proxy.cut(reset=True) >= 1
            publish(5, 5 + away)
            proxy.wait_for_refusal(refused)
            proxy.refusing = False
            last = 5 + away + 5
            publish(5 + away, last)
            page.wait_for(f"window.gaps.length >= {len(CHANNELS)}")
            page.wait_for(
                "CHANNELS.every((c) => window.received.some(([k, n]) => k === c && n === LAST))"
                .replace("CHANNELS", repr(CHANNELS)).replace("LAST", str(last - 1))
            )
            page.page.wait_for_timeout(300)  # a duplicate would come now, if at all
            got = per_channel(page.value("window.log"))
            for channel in CHANNELS:
                items = got[channel]
                assert items.count("gap") == 1, channel
                at = items.index("gap")
                before, after = items[:at], items[at + 1:]
                assert before == list(range(5)), channel
                # What the history still held, then what came live: no more lost, none twice.
                assert after == list(range(after[0], last)), channel
                assert after[0] > 5, channel  # some were lost: the gap was real
            assert sorted(page.value("window.gaps")) == sorted(CHANNELS)
        finally:
            browser.close()
