"""Presence (``tether.live.presence``): the same assertions on ``memory://``
and on a real Redis (a differential test), then what only Redis has: workers
that die, with a SIGKILL, and their members counted out within the bound."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import websockets.sync.client

from support import SHARED, free_port, need_redis, server_process, take, wait_for_port
from tether import Broadcast, Presence, Tether, websocket
from tether.live.broadcast import BroadcastUnavailable
from tether.live.presence import Here

SRC = Path(__file__).parent.parent / "src"


def delete_namespace(namespace: str) -> None:
    client = redis.Redis.from_url(SHARED)
    keys = list(client.scan_iter(f"tether:{namespace}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of this test's own on the shared Redis, deleted afterwards."""
    need_redis()
    name = f"tests-presence-{uuid.uuid4().hex[:12]}"
    yield name
    delete_namespace(name)


@pytest.fixture(params=["memory", "redis"])
def workers(request: pytest.FixtureRequest) -> Iterator[list[Presence]]:
    """Two presences standing for two worker processes: on Redis, two of their
    own (in a namespace of this test's own); in memory, one process, so one
    presence twice. Every assertion made with them holds on both."""
    if request.param == "memory":
        presence = Presence("memory://")
        yield [presence, presence]
        presence.close()
        return
    need_redis()
    name = f"tests-presence-{uuid.uuid4().hex[:12]}"
    made = [Presence(SHARED, namespace=name, ttl=3.0) for _ in range(2)]
    yield made
    for presence in made:
        presence.close()
    delete_namespace(name)


def join(member: str, meta: object = None) -> dict[str, object]:
    return {"presence": "join", "member": member, "meta": meta}


def leave(member: str, meta: object = None) -> dict[str, object]:
    return {"presence": "leave", "member": member, "meta": meta}


def events_until_marker(presence: Presence, subscription: t.Any, channel: str) -> list[object]:
    """Every event queued so far: a marker published last comes after them all."""
    marker = {"marker": uuid.uuid4().hex}
    presence.broadcast.publish(channel, marker)
    found: list[object] = []
    while True:
        (message,) = take(subscription, 1)
        if message == marker:
            return found
        found.append(message)


def test_a_member_is_counted_once_however_many_connections(workers: list[Presence]) -> None:
    a, b = workers
    laptop, phone = {"name": "Alice", "device": "laptop"}, {"name": "Alice", "device": "phone"}
    with a.broadcast.subscribe("room") as events:
        with a.enter("room", "alice", laptop) as first:
            with b.enter("room", "alice", phone) as second, b.enter("room", "bob", {"device": "tv"}) as bob:
                assert (first.first, second.first, bob.first) == (True, False, True)
                assert a.members("room") == b.members("room") == {"alice": laptop, "bob": {"device": "tv"}}
                assert list(a.members("room")) == ["alice", "bob"]
                assert b.members("elsewhere") == {}
            assert a.members("room") == {"alice": laptop}
        assert a.members("room") == b.members("room") == {}
        assert events_until_marker(a, events, "room") == [
            join("alice", laptop), join("bob", {"device": "tv"}), leave("bob", {"device": "tv"}), leave("alice", laptop)
        ]


def test_the_meta_shown_is_the_earliest_connection_still_there(workers: list[Presence]) -> None:
    a, b = workers
    with a.broadcast.subscribe("room") as events:
        laptop = a.enter("room", "alice", {"device": "laptop"}).join()
        phone = b.enter("room", "alice", {"device": "phone"}).join()
        assert a.members("room") == {"alice": {"device": "laptop"}}
        laptop.leave()
        laptop.leave()  # a second time does nothing
        assert b.members("room") == {"alice": {"device": "phone"}}
        phone.leave()
        assert events_until_marker(a, events, "room") == [join("alice", {"device": "laptop"}), leave("alice", {"device": "phone"})]


def test_async_enter_and_members(workers: list[Presence]) -> None:
    a, b = workers

    async def main() -> None:
        async with a.enter("room", "carol", [1, "tab"]) as here:
            assert here.first is True
            assert await b.amembers("room") == {"carol": [1, "tab"]}
            async with b.enter("room", "carol", [2, "tab"]) as again:
                assert again.first is False
        assert await a.amembers("room") == {}

    with a.broadcast.subscribe("room") as events:
        asyncio.run(main())
        assert events_until_marker(a, events, "room") == [join("carol", [1, "tab"]), leave("carol", [1, "tab"])]


def test_connections_coming_and_going_at_once_keep_the_count_exact(workers: list[Presence]) -> None:
    a, b = workers
    with a.broadcast.subscribe("room", maxsize=10_000) as events:
        anchor = a.enter("room", "dana", {"device": "desk"}).join()

        def churn(presence: Presence, member: str) -> None:
            for _ in range(40):
                with presence.enter("room", member, {"device": "tab"}):
                    pass

        threads = [threading.Thread(target=churn, args=(p, m)) for p in (a, b) for m in ("dana", "erin") for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert a.members("room") == b.members("room") == {"dana": {"device": "desk"}}
        anchor.leave()
        assert a.members("room") == {}
        found = events_until_marker(a, events, "room")
    dana = [e for e in found if e["member"] == "dana"]  # type: ignore[index]
    assert dana == [join("dana", {"device": "desk"}), leave("dana", {"device": "desk"})]
    erin = [e["presence"] for e in found if e["member"] == "erin"]  # type: ignore[index]
    assert erin.count("join") == erin.count("leave") >= 1


def test_many_sockets_entering_at_once_on_one_loop(workers: list[Presence]) -> None:
    """A reconnection storm: 600 tabs of 30 members enter together on one event
    loop (more than a connection pool holds), then leave together."""
    a, b = workers

    async def main() -> list[Here]:
        tabs = [(a if i % 2 else b).enter("room", f"user{i % 30}", {"tab": i}) for i in range(600)]
        await asyncio.gather(*(tab.ajoin() for tab in tabs))
        assert set(await a.amembers("room")) == {f"user{i}" for i in range(30)}
        await asyncio.gather(*(tab.aleave() for tab in tabs))
        return tabs

    with a.broadcast.subscribe("room", maxsize=1000) as events:
        tabs = asyncio.run(main())
        assert sum(bool(tab.first) for tab in tabs) == 30
        assert a.members("room") == {}
        found = events_until_marker(a, events, "room")
    assert sorted((e["member"], e["presence"]) for e in found) == sorted(  # type: ignore[index]
        (f"user{i}", action) for i in range(30) for action in ("join", "leave")
    )


def test_names_and_meta_are_checked(workers: list[Presence]) -> None:
    a, _ = workers
    with pytest.raises(TypeError, match="member id is a str"):
        a.enter("room", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="channel is a str"):
        a.members(b"room")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON-serializable"):
        a.enter("room", "alice", object())
    here = a.enter("room", "\ud800 lone", {"device": "\u00e9"})
    with here:
        assert a.members("room") == {"\ud800 lone": {"device": "\u00e9"}}
        with pytest.raises(RuntimeError, match="enters once"):
            here.join()
    assert a.members("room") == {}


def test_a_presence_needs_a_namespace_on_redis_and_a_positive_ttl() -> None:
    with pytest.raises(ValueError, match="needs a namespace"):
        Presence(SHARED)
    with pytest.raises(ValueError, match="TTL"):
        Presence("memory://", ttl=0)
    with pytest.raises(ValueError, match="shares its namespace"):
        Presence(Broadcast("memory://", namespace="a"), namespace="b")


def test_the_app_has_one_presence_over_its_broadcast_stopped_with_it() -> None:
    app = Tether(__name__)
    app.config["PRESENCE_TTL"] = 4.0

    @app.websocket("/room")
    async def room() -> None:
        async with app.presence.enter("room", websocket.args["member"], {"device": "test"}):
            await websocket.send_json(await app.presence.amembers("room"))
            await websocket.receive()

    assert app.presence is app.presence and app.presence.broadcast is app.broadcast and app.presence.ttl == 4.0
    assert app.presence in app.serving.services
    with app.test_client() as client, client.websocket("/room?member=alice") as ws:
        assert ws.receive_json() == {"alice": {"device": "test"}}
        assert app.presence.members("room") == {"alice": {"device": "test"}}
        ws.send("bye")
    deadline = time.monotonic() + 10
    while app.presence.members("room"):
        assert time.monotonic() < deadline, "the connection did not leave"
        time.sleep(0.01)


def test_keys_live_under_the_namespace_and_go_when_empty(namespace: str) -> None:
    presence = Presence(SHARED, namespace=namespace, ttl=3.0)
    client = redis.Redis.from_url(SHARED)
    with presence.enter("a:room", "alice"):
        keys = {k.decode() for k in client.scan_iter(f"tether:{namespace}:presence*")}
        worker = presence.backend.worker  # type: ignore[attr-defined]
        assert keys == {
            f"tether:{namespace}:presence:a:room:conns", f"tether:{namespace}:presence:a:room:counts",
            f"tether:{namespace}:presence-workers", f"tether:{namespace}:presence-worker:{worker}",
        }
    presence.close()
    assert list(client.scan_iter(f"tether:{namespace}:presence*")) == []


HOLDER = """
import sys, time
from tether import Presence
presence = Presence({url!r}, namespace={namespace!r}, ttl={ttl})
for member in sys.argv[1:]:
    presence.enter("room", member, {{"device": "script"}}).join()
print("ready", flush=True)
time.sleep(3600)
"""


def hold(namespace: str, *members: str, ttl: float) -> subprocess.Popen[str]:
    """A process that enters ``members`` and waits, to be killed."""
    code = HOLDER.format(url=SHARED, namespace=namespace, ttl=ttl)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *members], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds (no timing assertion: ``timeout`` is
    only a deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_killed_process_loses_its_members_and_their_leaves_go_out(namespace: str) -> None:
    ttl = 1.5
    presence = Presence(SHARED, namespace=namespace, ttl=ttl)
    with presence.broadcast.subscribe("room", maxsize=1000) as events:
        holder = hold(namespace, "alice", "bob", ttl=ttl)
        try:
            with presence.enter("room", "bob", {"device": "here"}):
                assert presence.members("room") == {"alice": {"device": "script"}, "bob": {"device": "script"}}
                holder.send_signal(signal.SIGKILL)
                holder.wait()
                killed = time.monotonic()
                wait_for(lambda: "alice" not in presence.members("room"), 30, "alice is still counted")
                counted_out = time.monotonic() - killed
                wait_for(lambda: leave("alice", {"device": "script"}) in events.queued(), 30, "no leave")
                left = time.monotonic() - killed
                assert presence.members("room") == {"bob": {"device": "here"}}
                found = events_until_marker(presence, events, "room")
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
    assert found == [join("alice", {"device": "script"}), join("bob", {"device": "script"}), leave("alice", {"device": "script"})]
    print(f"TTL {ttl} s: counted out {counted_out:.2f} s, leave event {left:.2f} s after the kill")


def test_a_process_whose_keys_were_lost_adds_its_connections_again(namespace: str) -> None:
    presence = Presence(SHARED, namespace=namespace, ttl=1.5)
    client = redis.Redis.from_url(SHARED)
    with presence.broadcast.subscribe("room") as events, presence.enter("room", "alice", {"device": "laptop"}):
        client.delete(*client.scan_iter(f"tether:{namespace}:presence*"))  # as a Redis restarted empty
        assert presence.members("room") == {}
        wait_for(lambda: presence.members("room") == {"alice": {"device": "laptop"}}, 30, "not added again")
        assert take(events, 2) == [join("alice", {"device": "laptop"})] * 2
    assert presence.members("room") == {}


def test_a_leave_while_redis_is_down_is_retried(own_redis: tuple[str, t.Any, t.Any]) -> None:
    url, start, stop = own_redis
    presence = Presence(url, namespace="tests", ttl=3.0)
    here = presence.enter("room", "alice").join()
    with presence.enter("room", "carol"):  # keeps the worker heartbeating: nothing expires
        stop()
        with pytest.raises(BroadcastUnavailable, match="did not reach Redis"):
            presence.enter("room", "bob").join()
        here.leave()  # does not raise: kept for the heartbeat thread
        start()
        wait_for(lambda: presence.members("room") == {"carol": None}, 30, "the leave was not retried")
    presence.close()


def connect(port: int, member: str, device: str, stack: contextlib.ExitStack) -> tuple[t.Any, dict[str, t.Any]]:
    url = f"ws://127.0.0.1:{port}/room/lobby?member={member}&device={device}"
    ws = stack.enter_context(websockets.sync.client.connect(url, open_timeout=10))
    return ws, json.loads(ws.recv(timeout=10))


def test_three_workers_and_a_sigkill(namespace: str) -> None:
    """Tabs on three uvicorn processes; one is killed: members held only there
    leave within the bound, with a leave event; a member with a tab elsewhere
    stays; a member with tabs on two workers is counted once."""
    ttl = 1.5
    ports = [free_port() for _ in range(3)]
    env = {"TETHER_BROADCAST_NAMESPACE": namespace, "TETHER_PRESENCE_TTL": str(ttl)}
    procs = [server_process(["uvicorn", "--port", str(port), "presence_app:app"], **env) for port in ports]
    reader = Presence(SHARED, namespace=namespace)
    try:
        for port, proc in zip(ports, procs, strict=True):
            wait_for_port(port, proc)
        killed, kept, third = ports
        with reader.broadcast.subscribe("lobby", maxsize=1000) as events, contextlib.ExitStack() as stack:
            tabs = {
                ("alice", killed): connect(killed, "alice", "laptop", stack),
                ("bob", killed): connect(killed, "bob", "laptop", stack),
                ("bob", kept): connect(kept, "bob", "phone", stack),
                ("carol", kept): connect(kept, "carol", "laptop", stack),
                ("carol", third): connect(third, "carol", "phone", stack),
            }
            assert [hello["first"] for _, hello in tabs.values()] == [True, True, False, True, False]
            with httpx.Client(timeout=30) as http, http.stream(
                "GET", f"http://127.0.0.1:{third}/room/lobby/events?member=dave&device=tablet"
            ) as sse:
                lines = sse.iter_lines()
                assert next(lines) == "event: entered"
                everyone = {
                    "alice": {"name": "Alice", "device": "laptop"}, "bob": {"name": "Bob", "device": "laptop"},
                    "carol": {"name": "Carol", "device": "laptop"}, "dave": {"name": "Dave", "device": "tablet"},
                }
                for port in ports:  # read from a view of each worker
                    assert http.get(f"http://127.0.0.1:{port}/room/lobby/members").json()["members"] == everyone
                procs[0].send_signal(signal.SIGKILL)
                procs[0].wait()
                killed = time.monotonic()
                wait_for(lambda: "alice" not in reader.members("lobby"), 30, "alice is still counted")
                counted_out = time.monotonic() - killed
                wait_for(lambda: leave("alice", everyone["alice"]) in events.queued(), 30, "no leave event for alice")
                left = time.monotonic() - killed
                assert reader.members("lobby") == {
                    "bob": {"name": "Bob", "device": "phone"}, "carol": everyone["carol"], "dave": everyone["dave"]
                }
            wait_for(lambda: leave("dave", everyone["dave"]) in events.queued(), 30, "the SSE tab did not leave")
            assert "dave" not in reader.members("lobby")
            tabs[("carol", kept)][0].close()
            assert "carol" in reader.members("lobby")  # her phone is still there
            tabs[("carol", third)][0].close()
            wait_for(lambda: "carol" not in reader.members("lobby"), 30, "carol did not leave")
            # Each event is published once its change is made: it may come just after.
            wait_for(lambda: leave("carol", {"name": "Carol", "device": "phone"}) in events.queued(), 30, "no leave")
            found = events_until_marker(reader, events, "lobby")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(20)
    by_member: dict[str, list[str]] = {}
    for event in found:
        by_member.setdefault(event["member"], []).append(event["presence"])  # type: ignore[index]
    assert by_member == {"alice": ["join", "leave"], "bob": ["join"], "carol": ["join", "leave"], "dave": ["join", "leave"]}
    print(f"TTL {ttl} s, 3 workers: counted out {counted_out:.2f} s, leave event {left:.2f} s after the kill")
