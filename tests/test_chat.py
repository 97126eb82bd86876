"""The chat example (examples/chat) under ``uvicorn --workers 4`` on the real
Redis, in a namespace of its own: two people on different workers hear each
other and see each other here, the channel rules refuse what they must, the
page shows a room's history, its people and what the announce script and a
Celery worker say in it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import typing as t
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from support import FLAGS, SHARED, free_port, need_redis, wait_for_port

ROOT = Path(__file__).parent.parent
WORKERS = 4


class Chat:
    """The example served by uvicorn with four workers, its environment."""

    def __init__(self, port: int, env: dict[str, str], proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.env = env
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.namespace = env["TETHER_BROADCAST_NAMESPACE"]

    def worker_of(self, local_port: int) -> int:
        """The pid of the worker holding the connection from ``local_port``."""
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            for connection in child.net_connections(kind="tcp"):
                if connection.laddr.port == self.port and connection.raddr and connection.raddr.port == local_port:
                    return child.pid
        raise LookupError(f"no worker holds the connection from port {local_port}")


@pytest.fixture(scope="module")
def chat() -> Iterator[Chat]:
    need_redis()
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "TETHER_BROADCAST_URL": SHARED, "TETHER_BROADCAST_NAMESPACE": f"test-chat-{uuid.uuid4().hex}",
        "TETHER_CHAT_PRIVATE_ROOMS": json.dumps({"staff": ["alice", "bob"]}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--workers", str(WORKERS), "--port", str(port), "examples.chat.app:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, timeout=60)
        deadline = time.monotonic() + 60
        while len(psutil.Process(proc.pid).children()) < WORKERS:
            assert time.monotonic() < deadline, "uvicorn did not start its workers"
            time.sleep(0.1)
        yield Chat(port, env, proc)
    finally:
        proc.terminate()
        proc.wait(30)
        forget(env["TETHER_BROADCAST_NAMESPACE"])


def forget(namespace: str) -> None:
    """Delete the keys of the test's namespace (and its Celery queue's) from the shared Redis."""
    client = redis.Redis.from_url(SHARED)
    keys = [*client.scan_iter(f"tether:{namespace}:*"), *client.scan_iter(f"_kombu.binding*.{namespace}")]
    if keys:
        client.delete(*keys)


def room() -> str:
    """A room of the test's own: the module's tests share one server."""
    return f"r-{uuid.uuid4().hex[:12]}"


def sign_in(chat: Chat, name: str) -> httpx.Client:
    client = httpx.Client(base_url=chat.url, timeout=10)
    assert client.post("/", data={"name": name}).status_code == 302
    return client


def cookie(client: httpx.Client) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


# Two people over plain WebSocket clients, on workers the test checks.


class Person:
    """One person's tab: the live socket, as the browser client speaks to it."""

    def __init__(self, chat: Chat, name: str) -> None:
        self.chat = chat
        self.name = name
        self.http = sign_in(chat, name)
        self.live: t.Any = None

    async def connect(self, path: str, avoid: int | None = None) -> tuple[t.Any, int]:
        """A socket to ``path``, on a worker other than ``avoid`` (reconnecting until so)."""
        import websockets

        for _ in range(40):
            socket = await websockets.connect(
                f"ws://127.0.0.1:{self.chat.port}{path}", additional_headers={"Cookie": cookie(self.http)}
            )
            worker = self.chat.worker_of(socket.local_address[1])
            if worker != avoid:
                return socket, worker
            await socket.close()
        raise AssertionError(f"every connection to {path} landed on worker {avoid}")

    async def received(self, want: t.Callable[[dict[str, t.Any]], bool], timeout: float = 20) -> dict[str, t.Any]:
        """The first message on the live socket that ``want`` takes."""
        return await received(self.live, want, timeout)

    async def members(self, name: str) -> list[str]:
        response = await asyncio.to_thread(self.http.get, f"/api/rooms/{name}/members")
        assert response.status_code == 200, response.text
        return t.cast(list[str], response.json()["members"])

    def say(self, name: str, text: str) -> httpx.Response:
        return self.http.post(f"/api/rooms/{name}/messages", json={"text": text})


async def received(socket: t.Any, want: t.Callable[[dict[str, t.Any]], bool], timeout: float = 20) -> dict[str, t.Any]:
    """The first message on ``socket`` that ``want`` takes."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await socket.recv())
            if want(message):
                return t.cast(dict[str, t.Any], message)


def joined(channel: str) -> t.Callable[[dict[str, t.Any]], bool]:
    return lambda m: m.get("event") == "joined" and m["channel"] == channel


def present(name: str) -> dict[str, t.Any]:
    """A member as a ``joined`` reply lists them."""
    return {"member": name, "meta": {"name": name}}


async def wait_for_members(person: Person, name: str, expected: list[str]) -> None:
    async with asyncio.timeout(20):
        while await person.members(name) != expected:
            await asyncio.sleep(0.05)


def chat_from(author: str, text: str) -> t.Callable[[dict[str, t.Any]], bool]:
    return lambda m: m.get("event") == "chat" and m["data"]["author"] == author and m["data"]["text"] == text


def test_two_people_on_different_workers_hear_each_other_and_are_here_once(chat: Chat) -> None:
    async def scenario() -> None:
        lobby = room()
        alice, bob = Person(chat, "alice"), Person(chat, "bob")
        alice.live, alice_worker = await alice.connect("/live/ws")
        bob.live, _ = await bob.connect("/live/ws", avoid=alice_worker)
        for person in (alice, bob):
            await person.live.send(json.dumps({"join": f"room:{lobby}"}))
            await person.received(joined(f"room:{lobby}"))
        # Joining the room's presence channel puts the connection in the room,
        # and its reply says who is there: on every worker.
        await alice.live.send(json.dumps({"join": f"here:{lobby}"}))
        assert (await alice.received(joined(f"here:{lobby}")))["members"] == [present("alice")]
        await wait_for_members(bob, lobby, ["alice"])
        await bob.live.send(json.dumps({"join": f"here:{lobby}"}))
        assert (await bob.received(joined(f"here:{lobby}")))["members"] == [present("alice"), present("bob")]
        came = await alice.received(lambda m: m.get("event") == "presence" and m["data"]["member"] == "bob")
        assert came["channel"] == f"here:{lobby}"
        assert came["data"] == {"presence": "join", "member": "bob", "meta": {"name": "bob"}}
        await wait_for_members(alice, lobby, ["alice", "bob"])

        assert alice.say(lobby, "hello from alice").status_code == 201
        heard = await bob.received(chat_from("alice", "hello from alice"))
        assert heard["channel"] == f"room:{lobby}" and heard["data"]["time"].endswith("Z")
        assert bob.say(lobby, "hi @alice").status_code == 201
        await alice.received(chat_from("bob", "hi @alice"))

        second_tab, _ = await alice.connect("/live/ws")  # the same person again: still here once
        await second_tab.send(json.dumps({"join": f"here:{lobby}"}))
        assert (await received(second_tab, joined(f"here:{lobby}")))["members"] == [present("alice"), present("bob")]
        await alice.live.close()
        await asyncio.sleep(0.5)
        assert await bob.members(lobby) == ["alice", "bob"]
        await second_tab.close()
        await wait_for_members(bob, lobby, ["bob"])
        left = await bob.received(lambda m: m.get("event") == "presence" and m["data"]["presence"] == "leave")
        assert left["data"] == {"presence": "leave", "member": "alice", "meta": {"name": "alice"}}
        await bob.live.close()

    asyncio.run(scenario())


def test_the_channel_rules_refuse_others_private_rooms_and_user_channels(chat: Chat) -> None:
    async def scenario() -> None:
        carol = Person(chat, "carol")
        carol.live, _ = await carol.connect("/live/ws")
        for channel in ("room:staff", "user:alice", "here:staff", "room:Not_A_Room"):
            await carol.live.send(json.dumps({"join": channel}))
            answer = await carol.received(lambda m, c=channel: m.get("channel") == c)
            assert answer == {"event": "refused", "channel": channel}
        await carol.live.send(json.dumps({"join": "user:carol"}))
        assert (await carol.received(lambda m: m.get("channel") == "user:carol"))["event"] == "joined"
        await carol.live.close()

    asyncio.run(scenario())
    carol = sign_in(chat, "carol")
    refused = carol.post("/api/rooms/staff/messages", json={"text": "let me in"})
    assert refused.status_code == 403 and refused.json() == {"error": "You may not enter 'staff'."}
    assert carol.get("/api/rooms/staff/members").status_code == 403
    anonymous = httpx.Client(base_url=chat.url)
    assert anonymous.post("/api/rooms/lobby/messages", json={"text": "hi"}).status_code == 401
    alice = sign_in(chat, "alice")
    assert alice.post("/api/rooms/staff/messages", json={"text": "staff only"}).status_code == 201


def test_a_mention_reaches_the_persons_own_channel(chat: Chat) -> None:
    async def scenario() -> None:
        bob = Person(chat, "bob")
        bob.live, _ = await bob.connect("/live/ws")
        await bob.live.send(json.dumps({"join": "user:bob"}))
        await bob.received(lambda m: m.get("event") == "joined")
        name = room()
        assert sign_in(chat, "alice").post(f"/api/rooms/{name}/messages", json={"text": "ping @bob"}).status_code == 201
        mention = await bob.received(lambda m: m.get("event") == "mention")
        assert mention["channel"] == "user:bob"
        assert {k: mention["data"][k] for k in ("room", "author", "text")} == {"room": name, "author": "alice", "text": "ping @bob"}
        await bob.live.close()

    asyncio.run(scenario())


# The page, in Chromium.


def announce(chat: Chat, name: str, text: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "examples.chat.announce", name, text], cwd=ROOT, env=chat.env, check=True, timeout=60,
        stdout=subprocess.DEVNULL,
    )


def texts(page: t.Any) -> list[str]:
    return t.cast(list[str], page.eval_on_selector_all("#messages .text", "nodes => nodes.map(n => n.textContent)"))


def here_now(page: t.Any) -> list[str]:
    return t.cast(list[str], page.eval_on_selector_all("#members li", "nodes => nodes.map(n => n.textContent.trim())"))


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_the_page_shows_history_people_here_and_messages_from_outside(chat: Chat, chromium_path: str, transport: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    page_url = chat.url + ("/?sse" if transport == "sse" else "/")  # ?sse: the client's fallback, as behind a proxy

    name = room()
    alice_http = sign_in(chat, "alice")
    for n in range(3):
        assert alice_http.post(f"/api/rooms/{name}/messages", json={"text": f"before {n}"}).status_code == 201
    announce(chat, name, "the script says hi")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            pages, sockets = {}, []
            for person in ("alice", "bob"):
                page = browser.new_context().new_page()
                page.on("websocket", lambda socket, page=page: sockets.append((page.url, socket.url)))
                page.goto(chat.url)
                page.fill("input[name=name]", person)
                with page.expect_navigation():
                    page.click("button")
                if transport == "sse":
                    page.goto(page_url)
                # The page's script is deferred: the form is there before its handler.
                expect(page.locator("#status")).to_contain_text("live over", timeout=20_000)
                page.fill("#open-room input", name)
                page.press("#open-room input", "Enter")
                expect(page.locator("#room-title")).to_have_text(f"# {name}")
                pages[person] = page
            alice, bob = pages["alice"], pages["bob"]
            history = ["before 0", "before 1", "before 2", "the script says hi"]
            for page in (alice, bob):  # the room's history, in order, on joining
                page.wait_for_function(f"document.querySelectorAll('#messages .text').length >= {len(history)}")
                assert texts(page) == history
                page.wait_for_function("document.querySelectorAll('#members li').length === 2", timeout=20_000)
            assert here_now(alice) == ["A alice (you)", "B bob"]
            assert here_now(bob) == ["A alice", "B bob (you)"]
            assert alice.text_content(".message.announcement .head b") == "announcement"
            # One connection a page: rooms and presence over the live endpoint alone.
            opened = [url.split("/", 3)[3] for at, url in sockets if at == page_url]  # the pages shown
            assert opened == (["live/ws", "live/ws"] if transport == "websocket" else [])
            expect(bob.locator("#status")).to_have_text(
                "live over server-sent events" if transport == "sse" else "live over WebSocket"
            )

            alice.fill("#compose input", "hello @bob")
            alice.press("#compose input", "Enter")
            bob.wait_for_function("[...document.querySelectorAll('#messages .text')].some(n => n.textContent === 'hello @bob')")
            assert bob.locator(".message.mentions-me .text").all_text_contents() == ["hello @bob"]

            second = alice.context.new_page()  # alice's second tab: she is here once
            second.goto(page_url)
            second.wait_for_function("document.querySelectorAll('#members li').length === 2", timeout=20_000)
            bob.wait_for_timeout(500)
            assert here_now(bob) == ["A alice", "B bob (you)"]
            for _ in range(3):  # a reload: bob's old page leaves as his new one comes; he is here
                bob.reload()
                expect(bob.locator("#members li")).to_have_text(["A alice", "B bob (you)"], timeout=20_000)

            bob.click('#joined li[data-room="lobby"] .room-link')  # away: what comes in the room is unread
            expect(bob.locator("#room-title")).to_have_text("# lobby")
            announce(chat, name, "read me later")
            expect(bob.locator(f'#joined li[data-room="{name}"] .badge')).to_have_text("1")
            alice.wait_for_function("[...document.querySelectorAll('#messages .text')].some(n => n.textContent === 'read me later')")
            bob.click(f'#joined li[data-room="{name}"] .room-link')
            expect(bob.locator(f'#joined li[data-room="{name}"] .badge')).to_have_count(0)
            assert texts(bob)[-1] == "read me later"
        finally:
            browser.close()


# A Celery worker saying something in a room.


@pytest.fixture
def celery_worker(chat: Chat) -> Iterator[subprocess.Popen[bytes]]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "tether", "--app", "examples.chat.app", "celery", "worker", "-P", "solo",
         "-Q", chat.namespace, "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-n", f"{chat.namespace}@%h"],
        cwd=ROOT, env=chat.env,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        worker.wait(30)


def test_a_celery_worker_says_a_reminder_in_the_room(chat: Chat, celery_worker: subprocess.Popen[bytes]) -> None:
    async def scenario() -> None:
        name = room()
        alice = Person(chat, "alice")
        alice.live, _ = await alice.connect("/live/ws")
        await alice.live.send(json.dumps({"join": f"room:{name}"}))
        await alice.received(lambda m: m.get("event") == "joined")
        asked = await asyncio.to_thread(alice.say, name, "/remind 1 stretch your legs")
        assert asked.status_code == 202 and asked.json() == {"reminder": 1}
        said = await alice.received(lambda m: m.get("event") == "chat", timeout=90)
        assert said["data"]["author"] == "reminder" and said["data"]["kind"] == "bot"
        assert said["data"]["text"] == "@alice: stretch your legs"
        await alice.live.close()

    asyncio.run(scenario())
    assert celery_worker.poll() is None
