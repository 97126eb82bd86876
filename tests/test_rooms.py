"""Many channels per subscription, joined and left while it streams
(``subscribe_many``, ``join``, ``leave``), each with its own last id; event
names; one SSE id for every channel's position; WebSocket clients that join
and leave rooms by command. On ``memory://`` and on the real Redis alike."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import typing as t
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosedError

import tether
from support import CHANNELS, SHARED, Servers, take
from tether import Broadcast, Delivery, EventStream
from tether.live.broadcast import Gap, decode_last_ids, encode_last_ids

SERVERS = Path(__file__).parent / "servers"

#: Makes a broadcast of one backend: on memory://, the same one each time (its
#: messages stay in its process); on Redis, a new one, as in another process.
MakeBroadcast = Callable[[], Broadcast]


def maker(backend: str, namespace: str) -> MakeBroadcast:
    if backend == "memory":
        one = Broadcast()
        return lambda: one
    return lambda: Broadcast(SHARED, namespace=namespace)


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest) -> MakeBroadcast:
    """Broadcasts on one backend; on Redis, in a namespace of this test's own."""
    return maker(request.param, request.getfixturevalue("token") if request.param == "redis" else "")


def shown(items: list[object]) -> list[object]:
    """Deliveries without their ids (which differ by backend), gaps as they are."""
    return [(i.channel, i.message, i.event) if isinstance(i, Delivery) else i for i in items]


# -- in one process -------------------------------------------------------------


def test_a_subscription_follows_channels_joined_and_left_while_it_streams() -> None:
    broadcast = Broadcast()
    with broadcast.subscribe_many(["a"]) as subscription:
        first = broadcast.publish("a", 1)
        before = broadcast.publish("b", "not followed yet")
        subscription.join("b")
        second = broadcast.publish("b", 2, event="presence")
        assert subscription.channels == ("a", "b")
        assert next(subscription) == Delivery("a", first, 1, None)
        assert subscription.last_ids == {"a": first, "b": before}  # b: where it was joined
        assert next(subscription) == Delivery("b", second, 2, "presence")
        assert subscription.last_ids == {"a": first, "b": second} and subscription.last_id == second
        broadcast.publish("a", "queued, then left")
        subscription.leave("a")
        broadcast.publish("a", "after leaving")
        third = broadcast.publish("b", 3)
        assert subscription.queued() == [Delivery("b", third, 3, None)]  # a's queued message went with it
        assert subscription.channels == ("b",) and subscription.last_ids == {"b": second}
        assert broadcast.subscriber_count("a") == 0 and broadcast.subscriber_count("b") == 1
        subscription.join("b", last_id=first)  # followed already: nothing happens
        assert subscription.queued() == [Delivery("b", third, 3, None)]
    assert broadcast.subscriber_count() == 0 and broadcast._subscriptions == {}
    assert subscription.channels == ()
    subscription.join("c")  # closed: nothing happens
    assert broadcast.subscriber_count("c") == 0


def test_joining_with_a_last_id_replays_that_channel_and_a_gap_where_the_history_is_short() -> None:
    broadcast = Broadcast(history=3)
    ids = [broadcast.publish("news", n) for n in range(5)]
    with broadcast.subscribe_many() as subscription:
        subscription.join("news", last_id=ids[2])
        assert shown(subscription.queued()) == [("news", 3, None), ("news", 4, None)]
        for _ in range(2):
            next(subscription)
        subscription.leave("news")
        subscription.join("news", last_id=ids[0])  # older than the history
        assert shown(subscription.queued()) == [Gap("news", ids[0]), ("news", 2, None), ("news", 3, None),
                                                ("news", 4, None)]
        subscription.leave("news")
        subscription.join("news", last_id="junk")  # unknown: a gap, then the whole history
        assert subscription.queued()[0] == Gap("news", "junk") and len(subscription.queued()) == 4
        # Taking the gap leaves the channel's position where it was.
        next(subscription)
        assert subscription.last_ids == {"news": "0-0"}


def test_a_single_channel_subscription_yields_bare_messages_and_cannot_join() -> None:
    broadcast = Broadcast()
    with broadcast.subscribe("c") as subscription:
        message_id = broadcast.publish("c", {"n": 1}, event="tick")
        assert next(subscription) == {"n": 1} and subscription.last_ids == {"c": message_id}
        with pytest.raises(TypeError, match="subscribe_many"):
            subscription.join("d")
        with pytest.raises(TypeError, match="subscribe_many"):
            subscription.leave("c")
    for bad in ("a\nb", "a\rb", "a\x00b", 3):
        with pytest.raises(ValueError, match="event name"):
            broadcast.publish("c", 1, event=bad)  # type: ignore[arg-type]
    with broadcast.subscribe_many() as subscription, pytest.raises(TypeError, match="channel is a str"):
        subscription.join(7)  # type: ignore[arg-type]


def test_a_delivery_on_its_way_when_a_channel_is_left_and_joined_again_comes_once() -> None:
    """A message published from another thread reaches an async consumer
    through its loop; a leave and a join with a last id that happen before
    the loop gets to it catch it up already: it comes once."""
    broadcast = Broadcast()

    async def main() -> list[object]:
        subscription = broadcast.subscribe_many(["c", "d"])
        first = broadcast.publish("c", 0)
        assert (await subscription.__anext__()).message == 0
        subscription.ready()  # waits on this loop: what is published elsewhere comes through it
        publisher = threading.Thread(target=lambda: [broadcast.publish("c", 1), broadcast.publish("d", 1)])
        publisher.start()
        publisher.join()  # both on their way to this loop, which has not run since
        subscription.leave("c")
        subscription.join("c", last_id=first)
        subscription.leave("d")
        # A last message, through the same loop: once it is here, all that
        # came before it was handed over.
        publisher = threading.Thread(target=lambda: broadcast.publish("c", 2))
        publisher.start()
        publisher.join()
        async with asyncio.timeout(10):
            while ("c", 2, None) not in shown(subscription.queued()):
                await asyncio.sleep(0.01)
        queued = shown(subscription.queued())
        subscription.close()
        return queued

    assert asyncio.run(main()) == [("c", 1, None), ("c", 2, None)]


def test_a_join_while_others_publish_loses_and_repeats_nothing() -> None:
    broadcast = Broadcast(maxsize=5000, history=5000)

    async def main() -> list[object]:
        subscription = broadcast.subscribe_many(["other"])
        consumed: list[object] = []

        async def consume() -> None:
            async for delivery in subscription:
                consumed.append(delivery.message)
                if delivery.message == 2999:
                    return

        consumer = asyncio.ensure_future(consume())
        first = broadcast.publish("c", 0)
        publisher = threading.Thread(target=lambda: [broadcast.publish("c", n) for n in range(1, 3000)])
        joiner = threading.Thread(target=subscription.join, args=("c", first))
        publisher.start()
        joiner.start()
        await asyncio.to_thread(publisher.join)
        await asyncio.to_thread(joiner.join)
        await asyncio.wait_for(consumer, 30)
        subscription.close()
        return consumed

    assert asyncio.run(main()) == list(range(1, 3000))


# -- the SSE id of several channels ------------------------------------------------


@given(st.dictionaries(CHANNELS, st.text(st.characters(exclude_categories=()), max_size=25), max_size=6))
def test_every_channel_and_id_round_trips_through_one_ascii_sse_id(last_ids: dict[str, str]) -> None:
    encoded = encode_last_ids(last_ids)
    assert encoded.isascii() and not any(c in encoded for c in "\r\n\x00")
    assert decode_last_ids(encoded) == last_ids


@given(st.text(st.characters(exclude_categories=()), max_size=60))
def test_reading_any_sse_id_back_never_fails(text: str) -> None:
    decoded = decode_last_ids(text)
    assert decoded is None or all(isinstance(k, str) and isinstance(v, str) for k, v in decoded.items())


@pytest.mark.parametrize("text", ["1712345678901-0", "junk", "a=1-0&b", "a=1=2", "caf\xe9=1-0", "%ff=1-0"])
def test_what_is_not_an_encoding_decodes_to_none(text: str) -> None:
    assert decode_last_ids(text) is None


def test_an_event_stream_over_several_channels_resumes_each(app: tether.Tether) -> None:
    odd = "line\nbreak \ud800"  # a channel no SSE field could hold as it is

    @app.route("/feed")
    def feed() -> EventStream:
        return EventStream(app.broadcast.subscribe_many(["a", odd], last_ids=tether.request.last_event_id))

    a1 = app.broadcast.publish("a", {"n": 1})
    b1 = app.broadcast.publish(odd, "joined", event="presence")
    client = app.test_client()

    def read(last_event_id: str, count: int) -> list[dict[str, str]]:
        events = client.get("/feed", headers={"Last-Event-ID": last_event_id}, buffered=False).iter_events()
        try:
            return [next(events) for _ in range(count)]
        finally:
            events.close()

    first = read(encode_last_ids({"a": "0-0", odd: "0-0"}), 2)
    assert [(e["event"], json.loads(e["data"])) for e in first] == [
        ("message", {"channel": "a", "data": {"n": 1}}),
        ("presence", {"channel": odd, "data": "joined"}),
    ]
    assert decode_last_ids(first[0]["id"]) == {"a": a1, odd: "0-0"}
    assert decode_last_ids(first[1]["id"]) == {"a": a1, odd: b1}
    a2 = app.broadcast.publish("a", {"n": 2})
    resumed = read(first[1]["id"], 1)  # a resumes after a1, the other after b1: one event is new
    assert json.loads(resumed[0]["data"]) == {"channel": "a", "data": {"n": 2}}
    assert decode_last_ids(resumed[0]["id"]) == {"a": a2, odd: b1}
    # An id that is not one: every channel has a gap, then its whole history.
    gaps = read("1712345678901-0", 5)
    assert [(e["event"], json.loads(e["data"])) for e in gaps] == [
        ("gap", {"channel": "a", "last_id": ""}),
        ("message", {"channel": "a", "data": {"n": 1}}),
        ("message", {"channel": "a", "data": {"n": 2}}),
        ("gap", {"channel": odd, "last_id": ""}),
        ("presence", {"channel": odd, "data": "joined"}),
    ]
    # A channel it does not name starts live; one the stream does not follow is ignored.
    app.broadcast.publish(odd, "later")
    partial = read(encode_last_ids({"elsewhere": "1-0", odd: b1}), 1)
    assert json.loads(partial[0]["data"]) == {"channel": odd, "data": "later"}


def test_a_single_channel_event_stream_names_events_that_have_a_name(app: tether.Tether) -> None:
    @app.route("/feed")
    def feed() -> EventStream:
        return EventStream(app.broadcast.subscribe("news", last_id="0-0"))

    plain = app.broadcast.publish("news", {"n": 1})
    named = app.broadcast.publish("news", {"n": 2}, event="update")
    events = app.test_client().get("/feed", buffered=False).iter_events()
    assert [next(events), next(events)] == [
        {"id": plain, "data": '{"n": 1}'},
        {"id": named, "event": "update", "data": '{"n": 2}'},
    ]
    events.close()


# -- the same on both backends --------------------------------------------------


def scenario(make: MakeBroadcast) -> tuple[list[object], dict[str, str], list[str]]:
    """Join, publish on several channels, leave, rejoin with a last id, a gap."""
    publisher, broadcast = make(), make()
    watcher = broadcast.subscribe("a")  # when it has a message, every subscriber here has been handed it
    subscription = broadcast.subscribe_many(["a"], maxsize=50)
    got: list[object] = []
    try:
        a1 = publisher.publish("a", "a1")
        got += take(subscription, 1)
        publisher.publish("b", "before joining b")
        subscription.join("b")
        publisher.publish("b", "b1", event="presence")
        got += take(subscription, 1)
        a2 = asyncio.run(publisher.apublish("a", {"a": 2}, event="update"))
        got += take(subscription, 1)
        subscription.leave("a")
        publisher.publish("a", "a3, not followed")
        assert take(watcher, 3)[-1] == "a3, not followed"
        publisher.publish("b", "b2")
        got += take(subscription, 1)
        subscription.join("a", last_id=a1)  # a2 and a3 come again
        got += take(subscription, 2)
        subscription.join("c", last_id="not an id")
        publisher.publish("c", "c1")
        got += take(subscription, 2)
        ids = [t.cast(Delivery, item).id for item in got if isinstance(item, Delivery)]
        return shown(got), subscription.last_ids, [a1, a2, *ids]
    finally:
        subscription.close()
        watcher.close()


EXPECTED = [
    ("a", "a1", None),
    ("b", "b1", "presence"),
    ("a", {"a": 2}, "update"),
    ("b", "b2", None),
    ("a", {"a": 2}, "update"),
    ("a", "a3, not followed", None),
    Gap("c", "not an id"),
    ("c", "c1", None),
]


def test_join_leave_rejoin_and_gap_give_the_same_deliveries_on_memory_and_redis(token: str) -> None:  # noqa: F811
    results = {backend: scenario(maker(backend, token)) for backend in ("memory", "redis")}
    for backend, (deliveries, last_ids, ids) in results.items():
        assert deliveries == EXPECTED, backend
        a1, a2, *delivered = ids
        assert delivered[0] == a1 and delivered[2] == a2 == delivered[4], backend  # the replay has a2's own id
        assert last_ids == {"b": delivered[3], "a": delivered[5], "c": delivered[6]}, backend
    assert results["memory"][0] == results["redis"][0]


def long_resume(make: MakeBroadcast) -> dict[str, tuple[list[object], int]]:
    """Resumes that missed 500 messages the history (1,000) still holds, with
    a queue of 100, by each way of subscribing: what each yields up to the
    first live message after it (a duplicate would come before that), and
    how many it dropped."""
    publisher, broadcast = make(), make()
    assert broadcast.maxsize == 100
    seen = publisher.publish("long", "seen")
    for n in range(500):
        publisher.publish("long", n)
    joined = broadcast.subscribe_many()
    subscriptions = {
        "subscribe": broadcast.subscribe("long", last_id=seen),
        "subscribe_many": broadcast.subscribe_many(["long"], last_ids={"long": seen}),
        "subscribe_many, SSE id": broadcast.subscribe_many(["long"], last_ids=encode_last_ids({"long": seen})),
        "join": joined,
    }
    joined.join("long", seen)
    try:
        publisher.publish("long", "live")
        return {name: (shown(take(s, 501)), s.dropped) for name, s in subscriptions.items()}
    finally:
        for subscription in subscriptions.values():
            subscription.close()


def test_a_resume_longer_than_the_queue_comes_whole_on_memory_and_redis(token: str) -> None:  # noqa: F811
    results = {backend: long_resume(maker(backend, token)) for backend in ("memory", "redis")}
    for backend, result in results.items():
        for name, (got, dropped) in result.items():
            messages = [*range(500), "live"]
            expected = messages if name == "subscribe" else [("long", m, None) for m in messages]
            assert (got, dropped) == (expected, 0), (backend, name)
    assert results["memory"] == results["redis"]


def test_a_channel_joined_is_heard_at_once_and_one_left_no_more(make: MakeBroadcast) -> None:
    """On Redis, the listener reads a channel joined while it waits on others
    (woken without the joiner waiting on Redis)."""
    publisher, broadcast = make(), make()
    rooms = [f"room:{n}" for n in range(20)]
    with broadcast.subscribe_many(["idle"]) as subscription:
        for n, room in enumerate(rooms):
            subscription.join(room)
            publisher.publish(room, n)
            assert take(subscription, 1) == [Delivery(room, subscription.last_ids[room], n, None)]
            subscription.leave(room)
        assert broadcast.subscriber_count() == 1
        with broadcast.subscribe_many(rooms) as watcher:
            for room in rooms:
                publisher.publish(room, "after leaving")
            take(watcher, len(rooms))  # every subscriber here has been handed them
        assert subscription.queued() == [] and subscription.channels == ("idle",)


# -- WebSocket clients joining and leaving rooms ----------------------------------


@pytest.fixture(params=["memory", "redis"])
def rooms_server(request: pytest.FixtureRequest, serve: Servers) -> int:
    env = {}
    if request.param == "redis":
        env = {"BROADCAST_URL": SHARED, "BROADCAST_NAMESPACE": request.getfixturevalue("token")}
    return serve([sys.executable, "-m", "uvicorn", "--port", "{port}", "rooms_app:app"], cwd=SERVERS, env=env)


def _publish(port: int, room: str, data: object, event: str | None = None) -> str:
    params = {"event": event} if event else {}
    response = httpx.post(f"http://127.0.0.1:{port}/publish/{room}", json=data, params=params, timeout=10)
    return t.cast(str, response.json()["id"])


def _receive(ws: websockets.sync.client.ClientConnection, count: int) -> list[dict[str, t.Any]]:
    return [json.loads(ws.recv(timeout=10)) for _ in range(count)]


@pytest.mark.parametrize("path", ["/rooms", "/rooms-sync"])
def test_websocket_clients_join_and_leave_rooms_by_command(rooms_server: int, path: str) -> None:
    port = rooms_server
    with websockets.sync.client.connect(f"ws://127.0.0.1:{port}{path}?room=lobby") as ws:
        assert _receive(ws, 1) == [{"ready": ["lobby"]}]
        lobby1 = _publish(port, "lobby", {"text": "hi"})
        assert _receive(ws, 1) == [{"channel": "lobby", "id": lobby1, "event": None, "data": {"text": "hi"}}]
        ws.send(json.dumps({"join": "room:1"}))
        assert _receive(ws, 1) == [{"done": {"join": "room:1"}, "channels": ["lobby", "room:1"]}]
        joined = _publish(port, "room:1", {"user": "ann"}, event="presence")
        assert _receive(ws, 1) == [{"channel": "room:1", "id": joined, "event": "presence", "data": {"user": "ann"}}]
        ws.send(json.dumps({"leave": "lobby"}))
        assert _receive(ws, 1) == [{"done": {"leave": "lobby"}, "channels": ["room:1"]}]
        missed = _publish(port, "lobby", {"text": "while away"})
        said = _publish(port, "room:1", {"text": "only here"})
        assert _receive(ws, 1) == [{"channel": "room:1", "id": said, "event": None, "data": {"text": "only here"}}]
        ws.send(json.dumps({"join": "lobby", "last_id": lobby1}))
        got = _receive(ws, 2)  # the answer and the replay, in either order
        assert {"done": {"join": "lobby", "last_id": lobby1}, "channels": ["room:1", "lobby"]} in got
        assert {"channel": "lobby", "id": missed, "event": None, "data": {"text": "while away"}} in got
        ws.send(json.dumps({"join": "gone", "last_id": "junk"}))
        got = _receive(ws, 2)
        assert {"channel": "gone", "event": "gap", "last_id": "junk"} in got
        ws.send(json.dumps({"shout": "not a command"}))  # the handler's callback raises: the relay ends
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    for room in ("lobby", "room:1", "gone"):
        assert httpx.get(f"http://127.0.0.1:{port}/subscribers/{room}", timeout=10).json() == {"count": 0}


def test_an_event_stream_of_several_rooms_under_a_real_server_resumes_with_last_event_id(rooms_server: int) -> None:
    port = rooms_server
    base = f"http://127.0.0.1:{port}"
    ids = [_publish(port, "r1", {"n": 1}), _publish(port, "r2", {"n": 2}, event="presence")]
    headers = {"Last-Event-ID": encode_last_ids({"r1": "0-0", "r2": "0-0"})}
    with httpx.stream("GET", f"{base}/feed?room=r1&room=r2", headers=headers, timeout=30) as feed:
        events = read_events(feed.iter_lines(), 2)
    assert [(e.get("event"), json.loads(e["data"])) for e in events] == [
        ("message", {"channel": "r1", "data": {"n": 1}}),
        ("presence", {"channel": "r2", "data": {"n": 2}}),
    ]
    assert decode_last_ids(events[-1]["id"]) == {"r1": ids[0], "r2": ids[1]}
    newer = _publish(port, "r2", {"n": 3})
    with httpx.stream("GET", f"{base}/feed?room=r1&room=r2", headers={"Last-Event-ID": events[-1]["id"]},
                      timeout=30) as feed:
        resumed = read_events(feed.iter_lines(), 1)
    assert json.loads(resumed[0]["data"]) == {"channel": "r2", "data": {"n": 3}}
    assert decode_last_ids(resumed[0]["id"]) == {"r1": ids[0], "r2": newer}


def test_a_resume_longer_than_the_queue_comes_whole_over_sse_and_websockets(rooms_server: int) -> None:
    """500 missed, in a history of 1,000, with a queue of 100: every message,
    in order, no gap, through an EventStream resumed from Last-Event-ID (one
    channel, several), the live endpoint (WebSocket and SSE) and a relayed
    subscription's join. Each read stops at the last message."""
    port = rooms_server
    base = f"http://127.0.0.1:{port}"
    messages: list[object] = [*range(500), {"end": True}]
    published = httpx.post(f"{base}/publish-many/long", json=["seen", *messages], timeout=30).json()["ids"]
    seen, ids = published[0], published[1:]
    expected = [{"channel": "long", "id": i, "event": None, "data": m} for m, i in zip(messages, ids, strict=True)]

    def sse(path: str, last_event_id: str) -> list[dict[str, str]]:
        with httpx.stream("GET", base + path, headers={"Last-Event-ID": last_event_id}, timeout=30) as feed:
            return read_events(feed.iter_lines(), until=lambda event: '"end"' in event.get("data", ""))

    one = sse("/feed-one?room=long", seen)
    assert [(e.get("event"), e["id"], json.loads(e["data"])) for e in one] == [
        (None, i, m) for m, i in zip(messages, ids, strict=True)
    ]
    for path, first in (("/feed?room=long", []), ("/live/events?channels=long", ["joined"])):
        events = sse(path, encode_last_ids({"long": seen}))
        assert [e["event"] for e in events] == [*first, *["message"] * 501], path  # the endpoint says joined first
        assert [json.loads(e["data"]) for e in events[len(first):]] == [{"channel": "long", "data": m} for m in messages]
        assert decode_last_ids(events[-1]["id"]) == {"long": ids[-1]}, path
    for path in ("/live/ws", "/rooms"):
        with websockets.sync.client.connect(f"ws://127.0.0.1:{port}{path}") as ws:
            if path == "/rooms":
                assert _receive(ws, 1) == [{"ready": []}]
            ws.send(json.dumps({"join": "long", "last_id": seen}))
            got: list[dict[str, t.Any]] = []
            while not got or got[-1].get("data") != {"end": True}:
                got += _receive(ws, 1)
            assert [item for item in got if "id" in item] == expected, path
            answers = [item for item in got if "id" not in item]
            assert len(answers) <= 1 and "gap" not in [a.get("event") for a in answers], path


def read_events(
    lines: Iterator[str], count: int = 0, until: Callable[[dict[str, str]], bool] | None = None
) -> list[dict[str, str]]:
    """SSE events from ``lines``: ``count`` of them, or up to the one ``until`` accepts."""
    events: list[dict[str, str]] = []
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                events.append(event)
                event = {}
                if len(events) == count or (until is not None and until(events[-1])):
                    return events
            continue
        if not line.startswith(":"):
            name, _, value = line.partition(": ")
            event[name] = value
    return events
