"""Channel rules (``app.channel``) and the live endpoint (``app.live``), in process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import typing as t

import httpx
import pytest
import websockets.sync.client

from live_browser import Server
from tether import Tether, session, websocket
from tether.live.attendance import Attendance
from tether.live.channels import LIVE_ONLY, ChannelPolicy
from tether.live.sse import EventStream


def rules_app() -> Tether:
    app = Tether(__name__)
    app.secret_key = "test"
    app.live("/live")

    @app.channel("room:<name>")
    def room(name: str) -> bool:
        return name != "secret"

    @app.channel("user:<int:id>")
    def user(id: int) -> bool:
        return session.get("user_id") == id

    @app.channel("news:<name>")
    def news(name: str) -> object:
        return LIVE_ONLY

    @app.get("/login/<int:id>")
    def login(id: int) -> str:
        session["user_id"] = id
        return "ok"

    return app


def test_no_rule_allows_every_channel() -> None:
    policy = ChannelPolicy()
    assert policy.access("anything/at all").value == "full"


@pytest.mark.parametrize(
    ("channel", "allowed"),
    [
        ("room:lobby", True),
        ("room:secret", False),
        ("room:a b%2F?#é", True),
        ("room:a/b", False),  # a value never spans a '/'
        ("/room:lobby", False),  # not room:lobby's answer
        ("room:lobby/", False),
        ("room:secret/", False),
        ("room:", False),
        ("user:7", True),
        ("user:007", False),  # a different channel from user:7
        ("user:8", False),
        ("other", False),  # no rule: refused once rules exist
        ("", False),
        ("room:\ud800", False),  # cannot be built back (not UTF-8): refused, never let through
    ],
)
def test_rules_match_whole_names_only(channel: str, allowed: bool) -> None:
    app = rules_app()
    with app.test_request_context("/"):
        session["user_id"] = 7
        assert (app.channel_policy.access(channel).value != "refused") is allowed


def test_live_only_rule() -> None:
    app = rules_app()
    with app.test_request_context("/"):
        assert app.channel_policy.access("news:x") is LIVE_ONLY


def test_websocket_join_leave_refuse_and_resume() -> None:
    app = rules_app()
    client = app.test_client(asgi=True)
    client.get("/login/7")
    first = app.broadcast.publish("room:a", "old")
    with client.lifespan(), client.websocket("/live/ws") as ws:
        ws.send_json({"join": "user:8"})
        assert ws.receive_json() == {"event": "refused", "channel": "user:8"}
        ws.send_json({"join": "room:a", "last_id": "0-0"})
        got = [ws.receive_json(), ws.receive_json()]
        joined = next(item for item in got if item.get("event") == "joined")
        assert joined == {"event": "joined", "channel": "room:a", "position": "0-0"}
        old = next(item for item in got if item.get("event") != "joined")
        assert old == {"channel": "room:a", "id": first, "event": None, "data": "old"}
        ws.send_json({"join": "user:7"})
        assert ws.receive_json()["event"] == "joined"
        app.broadcast.publish("user:7", {"n": 1}, event="chat")
        assert ws.receive_json()["data"] == {"n": 1}
        ws.send_json({"leave": "room:a"})
        assert ws.receive_json() == {"event": "left", "channel": "room:a"}
        ws.send_json({"join": "news:x", "last_id": "0-0"})  # live only: no history
        assert ws.receive_json()["event"] == "joined"
        app.broadcast.publish("room:a", "unheard")
        last = app.broadcast.publish("news:x", "fresh")
        assert ws.receive_json() == {"channel": "news:x", "id": last, "event": None, "data": "fresh"}


def test_sse_fallback_refuses_and_resumes() -> None:
    app = rules_app()
    client = app.test_client()
    before = app.broadcast.publish("room:a", 1)
    app.broadcast.publish("room:a", 2)
    response = client.get(
        "/live/events", query_string={"channels": ["room:a", "room:secret"], "last_ids": f"room%3Aa={before}"},
        buffered=False,
    )
    chunks = response.iter_encoded()
    text = ""
    while "data: {\"channel\": \"room:a\", \"data\": 2}" not in text:
        text += next(chunks).decode()
    response.close()
    assert 'event: refused\ndata: {"channel": "room:secret", "event": "refused"}' in text
    assert "event: joined" in text
    assert '"data": 1}' not in text


def test_event_stream_and_relay_obey_the_rules() -> None:
    app = rules_app()

    @app.get("/raw")
    def raw() -> EventStream:
        return EventStream(app.broadcast.subscribe_many(["room:secret", "room:a"]))

    @app.websocket("/raw-ws")
    async def raw_ws() -> None:
        from tether import websocket

        await websocket.relay(app.broadcast.subscribe("room:secret", last_id="0-0"))

    app.broadcast.publish("room:secret", "hidden")
    client = app.test_client(asgi=True)
    with client.lifespan():
        response = client.get("/raw", buffered=False)
        first = next(response.iter_encoded()).decode()
        response.close()
        assert first == 'event: refused\ndata: {"channel": "room:secret", "event": "refused"}\n\n'
        with client.websocket("/raw-ws") as ws:
            assert ws.receive_json() == {"event": "refused", "channel": "room:secret"}


def test_client_script_is_served() -> None:
    app = rules_app()
    with app.test_request_context("/"):
        from tether import url_for

        assert url_for("live.client") == "/live/client.js"
    response = app.test_client().get("/live/client.js")
    assert response.mimetype == "text/javascript"
    assert b"class TetherLive" in response.data


@pytest.mark.parametrize("held", ["join", "rule"])
def test_a_held_join_does_not_stall_the_other_connections(held: str) -> None:
    """A join whose round trip to the backend (or whose sync rule) blocks is
    held off the loop: another connection of the worker still gets its
    messages meanwhile."""
    app = rules_app()
    entered, release, gave_up = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        entered.set()
        if not release.wait(10):  # only so that a stalled loop fails the test, not hangs it
            gave_up.set()

    @app.channel("slow:<name>")
    def slow(name: str) -> bool:
        if held == "rule":
            hold()
        return True

    backend = app.broadcast.backend
    tail = backend.tail

    def blocking_tail(channel: str) -> str | None:
        if held == "join" and channel.startswith("slow:"):
            hold()
        return tail(channel)

    backend.tail = blocking_tail  # type: ignore[method-assign]
    client = app.test_client(asgi=True)
    with client.lifespan(), client.websocket("/live/ws") as fast, client.websocket("/live/ws") as waiting:
        fast.send_json({"join": "room:a"})
        assert fast.receive_json()["event"] == "joined"
        waiting.send_json({"join": "slow:x"})
        assert entered.wait(10)
        app.broadcast.publish("room:a", "meanwhile")
        assert fast.receive_json()["data"] == "meanwhile"
        assert not gave_up.is_set()  # received while the other join was still held
        release.set()
        assert waiting.receive_json() == {"event": "joined", "channel": "slow:x", "position": "0-0"}
        app.broadcast.publish("slow:x", "after")
        assert waiting.receive_json()["data"] == "after"


def async_rules_app() -> Tether:
    """Async rules that read the client's session after an await."""
    app = Tether(__name__)
    app.secret_key = "test"
    app.config["SSE_KEEPALIVE_INTERVAL"] = 0.5
    app.live("/live")

    @app.channel("user:<int:id>")
    async def user(id: int) -> object:
        await asyncio.sleep(0)
        return session.get("user_id") == id

    @app.channel("news:<name>")
    async def news(name: str) -> object:
        await asyncio.sleep(0)
        return LIVE_ONLY if session.get("user_id") else False

    @app.get("/login/<int:id>")
    def login(id: int) -> str:
        session["user_id"] = id
        return "ok"

    @app.get("/async-stream")
    async def async_stream() -> EventStream:
        return EventStream(app.broadcast.subscribe_many(["user:8", "user:7"]))

    @app.get("/sync-stream")
    def sync_stream() -> EventStream:
        return EventStream(app.broadcast.subscribe_many(["user:8", "user:7"]))

    @app.websocket("/relay")
    async def relay() -> None:
        await websocket.relay(app.broadcast.subscribe_many(["user:8", "user:7"]))

    @app.websocket("/sync-relay")
    def sync_relay() -> None:
        websocket.relay(app.broadcast.subscribe_many(["user:8", "user:7"]))

    return app


def test_async_rules_in_the_endpoint() -> None:
    app = async_rules_app()
    with app.test_request_context("/"):
        session["user_id"] = 7
        assert app.channel_policy.access("user:7").value == "full"  # from sync code too
        assert app.channel_policy.access("user:8").value == "refused"
    client = app.test_client(asgi=True)
    client.get("/login/7")
    with client.lifespan(), client.websocket("/live/ws") as ws:
        ws.send_json({"join": "user:8"})
        assert ws.receive_json() == {"event": "refused", "channel": "user:8"}
        ws.send_json({"join": "user:7"})
        assert ws.receive_json()["event"] == "joined"
        ws.send_json({"join": "news:x", "last_id": "0-0"})
        assert ws.receive_json()["event"] == "joined"
        app.broadcast.publish("user:7", "mine")
        assert ws.receive_json()["data"] == "mine"
    response = client.get("/live/events", query_string={"channels": ["user:8", "user:7"]}, buffered=False)
    chunks, text = response.iter_encoded(), ""
    while "event: joined" not in text and "keep-alive" not in text:
        text += next(chunks).decode()
    response.close()
    assert text.startswith('event: refused\ndata: {"channel": "user:8", "event": "refused"}\n\n')
    assert 'event: joined\ndata: {"channel": "user:7", "position"' in text


@pytest.mark.parametrize("path", ["/async-stream", "/sync-stream"])
def test_async_rules_guard_an_event_stream(path: str) -> None:
    app = async_rules_app()
    client = app.test_client(asgi=True)
    client.get("/login/7")
    with client.lifespan():
        response = client.get(path, buffered=False)
        chunks = response.iter_encoded()
        first = next(chunks).decode()
        app.broadcast.publish("user:8", "not mine")
        app.broadcast.publish("user:7", "mine")
        text = ""
        while '"data": "mine"' not in text and "keep-alive" not in text:  # idle: it never came
            text += next(chunks).decode()
        response.close()
    assert first == 'event: refused\ndata: {"channel": "user:8", "event": "refused"}\n\n'
    assert "not mine" not in text and "refused" not in text


@pytest.mark.parametrize("path", ["/relay", "/sync-relay"])
def test_async_rules_guard_a_relay(path: str) -> None:
    app = async_rules_app()
    client = app.test_client(asgi=True)
    client.get("/login/7")
    with client.lifespan(), client.websocket(path) as ws:
        assert ws.receive_json() == {"event": "refused", "channel": "user:8"}
        app.broadcast.publish("user:8", "not mine")
        app.broadcast.publish("user:7", "mine")
        assert ws.receive_json()["data"] == "mine"


def test_async_rules_under_uvicorn() -> None:
    """tests/servers/live_client_app.py's async rule, which reads the
    handshake's or request's URL, over the WebSocket and the SSE fallback."""
    server = Server("memory://", "test-live-endpoint")
    server.start()
    try:
        with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/live/ws?key=a") as ws:
            for channel in ("vip:b", "vip:a"):
                ws.send(json.dumps({"join": channel}))
            assert json.loads(ws.recv(timeout=10)) == {"event": "refused", "channel": "vip:b"}
            assert json.loads(ws.recv(timeout=10))["channel"] == "vip:a"
        url = f"http://127.0.0.1:{server.port}/live/events"
        query = {"channels": ["vip:b", "vip:a"], "key": "a"}
        with httpx.stream("GET", url, params=query, timeout=10) as response:
            text = ""
            for chunk in response.iter_text():
                text += chunk
                if "event: joined" in text:
                    break
        assert text.startswith('event: refused\ndata: {"channel": "vip:b", "event": "refused"}\n\n')
        assert 'event: joined\ndata: {"channel": "vip:a", "position"' in text
    finally:
        server.stop()


def test_open_sse_fallbacks_hold_no_thread_of_the_pool() -> None:
    """More fallback streams than the pool has threads are all served, and a
    sync view still answers while they are open: the endpoint's stream is sent
    from the loop, not from a thread it would hold for as long as it is open."""
    server = Server("memory://", "test-live-threads", SYNC_THREADS="2")
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/live/events"
        with contextlib.ExitStack() as streams:
            for n in range(4):
                response = streams.enter_context(httpx.stream("GET", url, params={"channels": f"room:{n}"}, timeout=10))
                text = ""
                for chunk in response.iter_text():
                    text += chunk
                    if "event: joined" in text:
                        break
                assert f'"channel": "room:{n}"' in text
            assert httpx.get(f"http://127.0.0.1:{server.port}/login/a", timeout=10).text == "ok"
    finally:
        server.stop()


# Presence on the endpoint: app.live("/live", presence=who).


def presence_app(asynchronous: bool = False) -> Tether:
    """``here:<room>`` channels where a signed-in user is present, as their id
    with their name; ``room:<name>`` followed without being in it."""
    app = Tether(__name__)
    app.secret_key = "test"
    app.config["SSE_KEEPALIVE_INTERVAL"] = 0.2

    def who(channel: str) -> tuple[str, dict[str, str]] | None:
        user = session.get("user")
        if not channel.startswith("here:") or user is None:
            return None
        return str(user), {"name": f"user {user}"}

    async def async_who(channel: str) -> tuple[str, dict[str, str]] | None:
        await asyncio.sleep(0)
        return who(channel)

    app.live("/live", presence=async_who if asynchronous else who)

    @app.get("/login/<int:id>")
    def login(id: int) -> str:
        session["user"] = id
        return "ok"

    return app


def member(id: int) -> dict[str, object]:
    return {"member": str(id), "meta": {"name": f"user {id}"}}


def joined_events(text: str) -> dict[str, t.Any]:
    """Each SSE ``joined`` event's channel and members (``None`` without)."""
    found = {}
    for event in text.split("\n\n"):
        if event.startswith("event: joined\ndata: "):
            data = json.loads(event.split("data: ", 1)[1])
            found[data["channel"]] = data.get("members")
    return found


def read_until(chunks: t.Iterator[bytes], text: str, done: t.Callable[[str], bool], timeout: float = 10) -> str:
    """``text`` and what the stream sends next, until ``done`` (keep-alives
    come every 0.2 s: a failure, not a hang, when it never is)."""
    deadline = time.monotonic() + timeout
    while not done(text):
        assert time.monotonic() < deadline, f"never came; got {text!r}"
        text += next(chunks).decode()
    return text


def presences(text: str) -> list[tuple[str, str]]:
    """Each SSE ``presence`` event's action and member."""
    found = []
    for event in text.split("\n\n"):
        if event.startswith("event: presence\n"):
            data = json.loads(event.split("data: ", 1)[1])["data"]
            found.append((data["presence"], data["member"]))
    return found


def wait_until(done: t.Callable[[], bool], timeout: float = 10) -> None:
    """Wait for ``done()`` (a failure, not a hang, when it never comes)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "it did not happen"
        time.sleep(0.01)


def presence_event(ws: t.Any, action: str, id: int) -> dict[str, t.Any]:
    """The next presence event on ``ws`` (skipping nothing else: nothing else is published)."""
    event = ws.receive_json()
    assert event["event"] == "presence" and event["data"] == {"presence": action, "member": str(id), "meta": {"name": f"user {id}"}}
    return t.cast(dict[str, t.Any], event)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_websocket_is_present_in_what_it_joins_and_told_who_is_there(asynchronous: bool) -> None:
    app = presence_app(asynchronous)
    alice, bob = app.test_client(asgi=True), app.test_client(asgi=True)
    alice.get("/login/1")
    bob.get("/login/2")
    with alice.lifespan(), alice.websocket("/live/ws") as a:
        a.send_json({"join": "room:x"})  # followed, not present: no members
        assert a.receive_json() == {"event": "joined", "channel": "room:x", "position": "0-0"}
        a.send_json({"join": "here:x"})
        got = [a.receive_json(), a.receive_json()]  # its own join event, and the joined reply, in any order
        joined = next(item for item in got if item["event"] == "joined")
        assert joined["members"] == [member(1)]
        assert app.presence.members("here:x") == {"1": {"name": "user 1"}}
        with bob.websocket("/live/ws") as b:
            b.send_json({"join": "here:x"})
            got = [b.receive_json(), b.receive_json()]
            assert next(item for item in got if item["event"] == "joined")["members"] == [member(1), member(2)]
            presence_event(a, "join", 2)
            with bob.websocket("/live/ws") as second_tab:  # bob again: no event, listed once
                second_tab.send_json({"join": "here:x"})
                assert second_tab.receive_json()["members"] == [member(1), member(2)]
            b.send_json({"join": "here:x"})  # joined again: still once
            assert b.receive_json()["members"] == [member(1), member(2)]
            b.send_json({"leave": "here:x"})
            assert b.receive_json() == {"event": "left", "channel": "here:x"}
            wait_until(lambda: list(app.presence.members("here:x")) == ["1"])  # and the second tab went
            presence_event(a, "leave", 2)
            b.send_json({"join": "here:x"})
            presence_event(a, "join", 2)
        wait_until(lambda: list(app.presence.members("here:x")) == ["1"])  # the connection ended: out
        presence_event(a, "leave", 2)
    assert app.presence.members("here:x") == {}


def test_an_anonymous_websocket_follows_without_being_present() -> None:
    app = presence_app()
    client = app.test_client(asgi=True)
    with client.lifespan(), client.websocket("/live/ws") as ws:
        ws.send_json({"join": "here:x"})
        assert ws.receive_json() == {"event": "joined", "channel": "here:x", "position": "0-0"}
        assert app.presence.members("here:x") == {}


def test_a_presence_function_answering_something_else_is_a_type_error() -> None:
    app = Tether(__name__)
    app.live("/live", presence=lambda channel: "just a name")
    with app.test_request_context("/"), pytest.raises(TypeError, match=r"\(member, meta\) or None"):
        Attendance(lambda channel: "just a name", app.presence).enter("here:x")


@pytest.mark.parametrize(("asynchronous", "asgi"), [(False, True), (True, True), (False, False)])
def test_an_sse_stream_is_present_while_it_is_open(asynchronous: bool, asgi: bool) -> None:
    app = presence_app(asynchronous)
    alice, bob = app.test_client(asgi=asgi), app.test_client(asgi=asgi)
    alice.get("/login/1")
    bob.get("/login/2")
    with alice.lifespan() if asgi else contextlib.nullcontext():
        first = alice.get("/live/events", query_string={"channels": ["here:x", "room:x"]}, buffered=False)
        chunks, text = first.iter_encoded(), ""
        text = read_until(chunks, text, lambda text: text.count("event: joined") == 2)
        assert joined_events(text) == {"here:x": [member(1)], "room:x": None}
        assert app.presence.members("here:x") == {"1": {"name": "user 1"}}
        second = bob.get("/live/events", query_string={"channels": ["here:x"]}, buffered=False)
        assert joined_events(next(second.iter_encoded()).decode()) == {"here:x": [member(1), member(2)]}
        text = read_until(chunks, text, lambda text: ("join", "2") in presences(text))
        second.close()
        text = read_until(chunks, text, lambda text: ("leave", "2") in presences(text))
        assert list(app.presence.members("here:x")) == ["1"]
        first.close()
        assert app.presence.members("here:x") == {}
