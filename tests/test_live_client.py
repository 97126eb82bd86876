"""The browser client (``app.live``'s ``client.js``) in a real headless Chromium,
against uvicorn on Redis: joins, refusals, and a server killed and restarted
mid-stream, over the WebSocket and over the SSE fallback."""

from __future__ import annotations

import json
import typing as t
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


@pytest.mark.parametrize("transport", ["auto", "sse"])
def test_pages_see_who_is_here_and_a_member_leaves_with_their_last_tab(
    server: Server, chromium_path: str, transport: str
) -> None:
    """Two people in ``here:a``: each page lists both; bob's second tab adds
    nobody, closing his first one removes nobody, closing his last one makes
    him leave."""
    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{server.port}/?join=here:a&join=room:a&transport={transport}"

    def members(page: t.Any) -> list[str]:
        return t.cast(list[str], page.evaluate("window.members['here:a'] || []"))

    def wait_for_members(page: t.Any, expected: list[str]) -> None:
        want = json.dumps(json.dumps(expected, separators=(",", ":")))
        # In any order: a member's place is their earliest connection still there.
        page.wait_for_function(f"JSON.stringify([...(window.members['here:a'] || [])].sort()) === {want}", timeout=20_000)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            tabs = {}
            for name in ("alice", "bob"):
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{server.port}/login/{name}")
                page.goto(url)
                tabs[name] = page
            alice, bob = tabs["alice"], tabs["bob"]
            wait_for_members(alice, ["alice", "bob"])
            wait_for_members(bob, ["alice", "bob"])
            assert bob.evaluate("window.members['room:a']") is None  # followed there, not present
            assert bob.evaluate("window.transports") == ["sse" if transport == "sse" else "websocket"]
            alice.evaluate("window.live.join('room:b')")  # over SSE: a new stream, then the old one closes
            alice.wait_for_function("window.joined.includes('room:b')", timeout=20_000)

            second = bob.context.new_page()
            second.goto(url)
            wait_for_members(second, ["alice", "bob"])
            # alice stayed in here:a while her channels changed: no leave, no second join.
            assert [event for event in bob.evaluate("window.presences") if event[1] == "alice"] in (
                [], [["join", "alice"]],  # [] when she was there before bob's page joined
            )
            bob.close()
            second.close()
            wait_for_members(alice, ["alice"])
            # Counted once: one join and one leave for bob, whatever his tabs did.
            assert [event for event in alice.evaluate("window.presences") if event[1] == "bob"] == [
                ["join", "bob"], ["leave", "bob"],
            ]
            assert members(alice) == ["alice"]
        finally:
            browser.close()
