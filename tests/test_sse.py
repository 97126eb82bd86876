"""Server-Sent Events: framing, headers, keep-alive, Last-Event-ID, ending."""

from __future__ import annotations

import asyncio
import json
import threading
import typing as t
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tether
from asgi_harness import Exchange, http_scope, run
from tether import EventStream, ServerSentEvent, g, request


def test_framing() -> None:
    dumps = json.dumps
    assert ServerSentEvent("hi").encode(dumps) == "data: hi\n\n"
    assert ServerSentEvent("a\nb\r\nc\rd").encode(dumps) == "data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert ServerSentEvent({"x": 1}, event="update", id="42", retry=5000).encode(dumps) == (
        'event: update\nid: 42\nretry: 5000\ndata: {"x": 1}\n\n'
    )
    assert ServerSentEvent("").encode(dumps) == "data: \n\n"
    with pytest.raises(ValueError, match="line break"):
        ServerSentEvent("x", event="a\nb").encode(dumps)


@pytest.mark.parametrize("field", ["event", "id"])
@pytest.mark.parametrize("char", ["\n", "\r", "\r\n", "\x00"])
def test_a_field_refuses_what_a_browser_would_misread(field: str, char: str) -> None:
    """A line break would end the field; a browser ignores an id holding NUL, so
    its lastEventId would stay the previous one and a reconnect replay events."""
    with pytest.raises(ValueError, match="line break or NUL"):
        ServerSentEvent("x", **{field: f"6{char}x"}).encode(json.dumps)


def _as_a_browser_reads(frame: str) -> dict[str, str]:
    """The fields of one event as the HTML standard's parser sets them."""
    fields: dict[str, str] = {}
    for line in frame.removesuffix("\n\n").split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id" and "\x00" in value:
            continue
        fields[name] = fields[name] + "\n" + value if name == "data" and name in fields else value
    return fields


@given(event=st.text(), id=st.text(), data=st.text())
def test_what_is_sent_is_what_a_browser_reads(event: str, id: str, data: str) -> None:
    """Any event and id either round-trips exactly or is refused."""
    try:
        frame = ServerSentEvent(data, event=event, id=id).encode(json.dumps)
    except ValueError:
        assert any(c in event + id for c in "\r\n\x00")
        return
    fields = _as_a_browser_reads(frame)
    assert fields["event"] == event and fields["id"] == id
    assert fields["data"] == "\n".join(data.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def test_event_stream_sources_and_headers(app: tether.Tether) -> None:
    @app.route("/sync")
    def sync_events() -> EventStream:
        g.name = "sync"

        def source() -> Iterator[object]:
            yield f"{g.name} {request.args['q']}"
            yield {"n": 1}
            yield ServerSentEvent("multi\nline", event="note", id="3")

        return EventStream(source())

    @app.route("/async")
    async def async_events() -> EventStream:
        async def source() -> AsyncIterator[object]:
            for n in range(2):
                await asyncio.sleep(0)
                yield {"n": n, "path": request.path}

        return EventStream(source())

    client = app.test_client()
    response = client.get("/sync?q=x", buffered=False)
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache" and response.headers["X-Accel-Buffering"] == "no"
    assert "Content-Encoding" not in response.headers
    assert list(response.iter_events()) == [
        {"data": "sync x"},
        {"data": '{"n": 1}'},
        {"event": "note", "id": "3", "data": "multi\nline"},
    ]
    events = list(client.get("/async", buffered=False).iter_events())
    assert [json.loads(e["data"]) for e in events] == [{"n": 0, "path": "/async"}, {"n": 1, "path": "/async"}]


class _KeepaliveWatch(Exchange):
    """An ASGI exchange that releases the idle source once two keep-alives came."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    async def send(self, message: dict[str, t.Any]) -> None:
        await super().send(message)
        if b"".join(self.chunks).count(b": keep-alive") >= 2:
            self.release.set()


def test_keepalive_when_the_source_is_idle(app: tether.Tether) -> None:
    """The source stays idle until the client has had two keep-alives: no
    guess at how many fit in some duration."""
    release = threading.Event()

    @app.route("/slow")
    async def slow() -> EventStream:
        async def source() -> AsyncIterator[str]:
            await asyncio.to_thread(release.wait, 30)
            yield "late"

        return EventStream(source(), keepalive=0.05)

    @app.route("/slow-sync")
    def slow_sync() -> EventStream:
        def source() -> Iterator[str]:
            release.wait(30)
            yield "late"

        return EventStream(source(), keepalive=0.05)

    @app.route("/slow-subscription")
    async def slow_subscription() -> EventStream:
        subscription = app.broadcast.subscribe("slow")

        def later() -> None:
            release.wait(30)
            app.broadcast.publish("slow", "late")
            subscription.close()

        threading.Thread(target=later).start()
        return EventStream(subscription, keepalive=0.05)

    for path in ("/slow", "/slow-sync", "/slow-subscription"):
        release.clear()
        body = b""
        for chunk in app.test_client().get(path, buffered=False).iter_encoded():
            body += chunk
            if body.count(b": keep-alive") >= 2:
                release.set()
        text = body.decode()
        assert text.startswith(": keep-alive\n\n") and text.count(": keep-alive") >= 2, path
        assert text.endswith("data: late\n\n"), path
    release.clear()
    exchange = _KeepaliveWatch(release)
    run(app(http_scope("/slow-subscription"), exchange.receive, exchange.send))
    text = b"".join(exchange.chunks).decode()
    assert text.startswith(": keep-alive\n\n") and text.count(": keep-alive") >= 2
    assert text.endswith("data: late\n\n")


def test_last_event_id_is_available(app: tether.Tether) -> None:
    @app.route("/resume")
    def resume() -> EventStream:
        start = int(request.last_event_id or 0) + 1
        return EventStream(ServerSentEvent(str(n), id=str(n)) for n in range(start, start + 2))

    events = list(app.test_client().get("/resume", headers={"Last-Event-ID": "5"}, buffered=False).iter_events())
    assert [e["id"] for e in events] == ["6", "7"]


def test_stream_ends_when_the_client_leaves(app: tether.Tether) -> None:
    ended: list[str] = []
    app.teardown_request(lambda exc: ended.append("teardown"))

    @app.route("/feed")
    async def feed() -> EventStream:
        async def source() -> AsyncIterator[int]:
            try:
                n = 0
                while True:
                    n += 1
                    yield n
                    await asyncio.sleep(0.001)
            finally:
                ended.append("source closed")

        return EventStream(source())

    exchange = Exchange(disconnect_after=3)
    run(app(http_scope("/feed"), exchange.receive, exchange.send))
    assert exchange.chunks[:3] == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    assert ended == ["source closed", "teardown"]


def test_a_send_that_hangs_ends_the_stream(app: tether.Tether) -> None:
    ended: list[str] = []
    app.teardown_request(lambda exc: ended.append("teardown"))

    @app.route("/feed")
    async def feed() -> EventStream:
        async def source() -> AsyncIterator[int]:
            n = 0
            while True:
                n += 1
                yield n

        return EventStream(source(), send_timeout=0.05)

    class Stuck(Exchange):
        async def send(self, message: dict[str, object]) -> None:
            await super().send(message)
            if len(self.chunks) >= 2:
                await asyncio.Event().wait()

    exchange = Stuck()
    run(asyncio.wait_for(app(http_scope("/feed"), exchange.receive, exchange.send), 10))
    assert exchange.chunks == [b"data: 1\n\n", b"data: 2\n\n"] and ended == ["teardown"]


def test_seed_000_endpoints_with_event_stream(app: tether.Tether) -> None:
    @app.post("/api/vm/new")
    def vm_new() -> EventStream:
        def generate() -> Iterator[dict[str, str]]:
            data = request.json
            yield {"type": "log", "message": f"creating {data['name']}"}
            yield {"type": "success", "message": f"VM {data['name']} created"}

        return EventStream(generate())

    response = app.test_client().post("/api/vm/new", json={"name": "Carousell_HK_003"}, buffered=False)
    messages = [json.loads(e["data"])["message"] for e in response.iter_events()]
    assert messages == ["creating Carousell_HK_003", "VM Carousell_HK_003 created"]
