"""The Redis broadcast against a real Redis: the shared one on 127.0.0.1:6379
(each test on channels of its own, deleted after), and a redis-server of the
test's own where it must stop and restart one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import websockets.sync.client

from support import SHARED, free_port, own_channel, server_process, take, wait_for_port
from tether import Broadcast
from tether.live.broadcast import BroadcastUnavailable, Gap
from tether.live.broadcast.subscription import put_each
from tether.signals import broadcast_health_changed

#: The namespace of the broadcasts these tests make themselves; the apps of
#: tests/servers have their import names (``feed_app``, ``cluster_app``).
NS = "tests"


@pytest.fixture
def channel() -> Iterator[str]:
    """A channel of this test's own on the shared Redis, deleted afterwards."""
    yield from own_channel([NS, "feed_app"])


def test_a_message_reaches_the_subscribers_of_other_processes(channel: str) -> None:
    publisher, listener = Broadcast(SHARED, namespace=NS), Broadcast(SHARED, namespace=NS)
    with listener.subscribe(channel) as subscription, listener.subscribe(channel) as second:
        ids = [publisher.publish(channel, {"n": n}) for n in range(50)]
        assert take(subscription, 50) == [{"n": n} for n in range(50)]
        assert take(second, 50) == [{"n": n} for n in range(50)] and second.last_id == ids[-1]
        assert asyncio.run(publisher.apublish(channel, "async")) > ids[-1]
        assert take(subscription, 1) == ["async"]
    assert listener.healthy


def test_async_publishes_made_together_share_round_trips_and_keep_their_order(channel: str) -> None:
    publisher, listener = Broadcast(SHARED, namespace=NS), Broadcast(SHARED, namespace=NS)

    async def publish_together() -> list[str]:
        return await asyncio.gather(*(publisher.apublish(channel, n) for n in range(200)))

    with listener.subscribe(channel, maxsize=500) as subscription:
        ids = asyncio.run(publish_together())
        assert take(subscription, 200) == list(range(200))
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == 200
    assert subscription.last_id == ids[-1]


def test_what_one_read_brings_reaches_a_loop_in_one_hand_off_in_order(channel: str) -> None:
    """What one XREAD brings is handed to the subscribers' event loop in one
    call, each channel's messages in the order they were published. Published
    in one transaction to two channels, they come in one read, or in two when
    the read was blocked (Redis serves a blocked read one stream)."""
    other = f"{channel}-other"
    listener = Broadcast(SHARED, namespace=NS)
    raw = redis.Redis.from_url(SHARED)
    published = [(other if n % 2 else channel, n) for n in range(10)]

    def publish_together() -> None:
        pipeline = raw.pipeline(transaction=True)
        for name, n in published:
            pipeline.xadd(f"tether:{NS}:broadcast:{name}", {"m": json.dumps(n)})
        pipeline.execute()

    async def main() -> tuple[list[tuple[str, int]], list[int]]:
        loop = asyncio.get_running_loop()
        handed: list[int] = []
        call_soon_threadsafe = loop.call_soon_threadsafe

        def counted(callback: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
            if callback is put_each:
                handed.append(len(args[0]))
            return call_soon_threadsafe(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        async with listener.subscribe_many([channel, other]) as subscription:

            async def consume() -> list[tuple[str, int]]:
                return [(d.channel, d.message) for d in [await subscription.next_item() for _ in range(10)]]

            # Once a message of the channel followed last arrives, the listener reads both.
            await asyncio.to_thread(raw.xadd, f"tether:{NS}:broadcast:{other}", {"m": "-1"})
            assert (await asyncio.wait_for(subscription.next_item(), 10)).message == -1
            handed.clear()
            consumer = asyncio.ensure_future(consume())
            while subscription.home is not loop:  # the consumer waits on this loop
                await asyncio.sleep(0.01)
            await asyncio.to_thread(publish_together)
            return await asyncio.wait_for(consumer, 10), handed

    try:
        received, handed = asyncio.run(main())
    finally:
        raw.delete(f"tether:{NS}:broadcast:{other}")
    assert sorted(received, key=lambda pair: pair[1]) == published
    for name in (channel, other):
        assert [n for c, n in received if c == name] == [n for c, n in published if c == name]
    assert sum(handed) == 10 and len(handed) <= 2, handed


def test_resume_from_last_id_and_the_gap(channel: str) -> None:
    publisher = Broadcast(SHARED, namespace=NS, history=3)
    ids = [publisher.publish(channel, n) for n in range(5)]
    with Broadcast(SHARED, namespace=NS).subscribe(channel, last_id=ids[1]) as subscription:
        assert take(subscription, 3) == [2, 3, 4]
        publisher.publish(channel, 5)
        assert take(subscription, 1) == [5] and subscription.queued() == []
    for n in range(5, 400):  # Redis trims whole nodes of 100 entries
        publisher.publish(channel, n)
    with Broadcast(SHARED, namespace=NS).subscribe(channel, last_id=ids[0], maxsize=1000) as subscription:
        assert subscription.queued()[0] == Gap(channel, ids[0])


def test_a_message_that_is_not_json_fails_alone(channel: str) -> None:
    broadcast = Broadcast(SHARED, namespace=NS)
    with pytest.raises(TypeError, match="JSON-serializable"):
        broadcast.publish(channel, object())
    with broadcast.subscribe(channel) as subscription:
        broadcast.publish(channel, "fine")
        assert take(subscription, 1) == ["fine"]


def test_the_listener_survives_being_killed_and_catches_up(channel: str) -> None:
    changes: list[bool] = []
    broadcast = Broadcast(SHARED, namespace=NS)

    def changed(sender: object, healthy: bool) -> None:
        if sender is broadcast.backend:
            changes.append(healthy)

    broadcast_health_changed.connect(changed)
    publisher = Broadcast(SHARED, namespace=NS)
    try:
        with broadcast.subscribe(channel) as subscription:
            publisher.publish(channel, "before")
            assert take(subscription, 1) == ["before"]
            admin = redis.Redis.from_url(SHARED)
            name = broadcast.backend.client_name  # type: ignore[attr-defined]
            ids = [client["id"] for client in admin.client_list() if client.get("name") == name]
            assert len(ids) == 1
            admin.client_kill_filter(_id=ids[0])
            sent = [publisher.publish(channel, n) for n in range(100)]  # while it reconnects
            assert take(subscription, 100) == list(range(100)) and subscription.last_id == sent[-1]
            assert subscription.queued() == []
        assert changes[:1] == [True] and False in changes and changes[-1] is True
    finally:
        broadcast_health_changed.disconnect(changed)


def test_publishing_while_redis_is_down_raises_and_subscribers_stay(own_redis: tuple[str, object, object]) -> None:
    url, start, stop = own_redis
    broadcast = Broadcast(url, namespace=NS)
    with broadcast.subscribe("desk") as subscription:
        broadcast.publish("desk", "up")
        assert take(subscription, 1) == ["up"]
        stop()  # type: ignore[operator]
        with pytest.raises(BroadcastUnavailable, match="unreachable"):
            broadcast.publish("desk", "lost")
        with pytest.raises(BroadcastUnavailable):
            asyncio.run(broadcast.apublish("desk", "lost"))
        with pytest.raises(BroadcastUnavailable, match="could not be read"):
            broadcast.last_id("desk")
        with pytest.raises(BroadcastUnavailable, match="could not be read"):
            asyncio.run(broadcast.alast_id("desk"))
        broadcast.subscribe("desk").close()  # a join while down is made all the same
        start()  # type: ignore[operator]
        deadline = time.monotonic() + 20
        while True:  # the listener reconnects by itself
            try:
                broadcast.publish("desk", "back")
                break
            except BroadcastUnavailable:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert take(subscription, 1, timeout=30) == ["back"]
        assert not subscription.closed and broadcast.healthy


@pytest.mark.parametrize("url", ["memory://", SHARED])
def test_last_id_is_the_newest_message_of_a_channel(channel: str, url: str) -> None:
    """What a page reads before its snapshot, to join from: nothing after it is missed."""
    broadcast = Broadcast(url, namespace=NS)
    assert broadcast.last_id(channel) is None
    assert asyncio.run(broadcast.alast_id(channel)) is None
    broadcast.publish(channel, "old")
    newest = broadcast.publish(channel, "read in the snapshot")
    assert broadcast.last_id(channel) == newest
    assert asyncio.run(broadcast.alast_id(channel)) == newest
    assert broadcast.last_id(f"{channel}-other") is None
    broadcast.publish(channel, "after the snapshot")
    with broadcast.subscribe(channel, last_id=newest) as subscription:
        assert take(subscription, 1) == ["after the snapshot"]
    with pytest.raises(TypeError):
        broadcast.last_id(7)  # type: ignore[arg-type]


def test_publishing_from_another_thread_and_from_a_script(channel: str, tmp_path: Path) -> None:
    broadcast = Broadcast(SHARED, namespace=NS)
    with broadcast.subscribe(channel) as subscription:
        thread = threading.Thread(target=lambda: broadcast.publish(channel, "thread"))
        thread.start()
        thread.join()
        script = tmp_path / "publish.py"
        script.write_text(
            "from tether import Broadcast\n"
            f"Broadcast({SHARED!r}, namespace={NS!r}).publish({channel!r}, {{'from': 'script'}})\n"
        )
        src = Path(__file__).parent.parent / "src"
        subprocess.run(
            [sys.executable, str(script)], check=True, env={**os.environ, "PYTHONPATH": str(src)}, timeout=60
        )
        assert take(subscription, 2) == ["thread", {"from": "script"}]


def test_a_cluster_periodic_service_runs_once_per_interval_and_is_taken_over(
    channel: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.txt"
    procs = [
        server_process(
            ["uvicorn", "--port", str(free_port()), "cluster_app:app"],
            EVENTS_FILE=str(events), SERVICE_NAME=channel,
        )
        for _ in range(3)
    ]

    def runs() -> list[list[str]]:
        return [line.split() for line in events.read_text().splitlines()] if events.exists() else []

    def wait_for_runs(count: int) -> list[list[str]]:
        deadline = time.monotonic() + 60
        while len([r for r in runs() if r[0] == "end"]) < count:
            assert time.monotonic() < deadline, runs()
            time.sleep(0.05)
        return runs()

    try:
        first = wait_for_runs(6)
        holder = int(first[-1][2])
        victim = next(p for p in procs if p.pid == holder)
        victim.kill()
        victim.wait()
        dead_at = len(runs())
        after = wait_for_runs(len([r for r in first if r[0] == "end"]) + 6)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        keys = redis.Redis.from_url(SHARED).keys(f"tether:cluster_app:periodic:{channel}:*")
        if keys:
            redis.Redis.from_url(SHARED).delete(*keys)
    ended = {(r[1], r[2]) for r in after if r[0] == "end"}
    # A run cut short by the kill has no end; every other start is followed by its own end.
    lines = [r for r in after if r[0] == "end" or (r[1], r[2]) in ended]
    finished = lines if lines[-1][0] == "end" else lines[:-1]
    assert all(a[0] == "start" and b == ["end", a[1], a[2]] for a, b in zip(finished[::2], finished[1::2], strict=True))
    slots = [int(r[1]) for r in after if r[0] == "start"]
    assert len(slots) == len(set(slots)) and slots == sorted(slots)  # at most once per interval
    later = {r[2] for r in after[dead_at:]}
    assert later and str(holder) not in later  # the others went on without it


def test_several_workers_deliver_every_message_once_in_order_and_resume(channel: str, tmp_path: Path) -> None:
    port = free_port()
    proc = server_process(["uvicorn", "--port", str(port), "--workers", "3", "feed_app:app"], CHANNEL=channel)
    try:
        wait_for_port(port, proc)
        stack = contextlib.ExitStack()
        sockets, pids = [], set()
        while len(pids) < 2 or len(sockets) < 6:  # subscribers on more than one worker
            ws = stack.enter_context(websockets.sync.client.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10))
            pids.add(json.loads(ws.recv(timeout=10))["pid"])
            sockets.append(ws)
            assert len(sockets) < 60, "every connection went to one worker"
        publisher = Broadcast(SHARED, namespace="feed_app")
        with httpx.Client(timeout=30) as http, http.stream("GET", f"http://127.0.0.1:{port}/feed") as feed:
            lines = feed.iter_lines()
            ids = [publisher.publish(channel, {"n": n}) for n in range(200)]
            events = read_events(lines, 200)
        assert [json.loads(e["data"])["n"] for e in events] == list(range(200))
        assert [e["id"] for e in events] == ids
        with stack:
            for ws in sockets:
                assert [json.loads(ws.recv(timeout=10))["n"] for _ in range(200)] == list(range(200))
        more = [publisher.publish(channel, {"n": n}) for n in range(200, 205)]
        headers = {"Last-Event-ID": ids[-1]}
        with httpx.Client(timeout=30) as http, http.stream("GET", f"http://127.0.0.1:{port}/feed", headers=headers) as feed:
            resumed = read_events(feed.iter_lines(), 5)
        assert [e["id"] for e in resumed] == more
    finally:
        proc.terminate()
        proc.wait(20)


def read_events(lines: Iterator[str], count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                events.append(event)
                event = {}
                if len(events) == count:
                    return events
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        event[name] = value
    return events


def test_a_sync_gunicorn_worker_publishes(channel: str) -> None:
    port = free_port()
    proc = server_process(
        ["gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", "-k", "sync", "feed_app:app"], CHANNEL=channel
    )
    try:
        wait_for_port(port, proc)
        with Broadcast(SHARED, namespace="feed_app").subscribe(channel) as subscription:
            ids = [httpx.post(f"http://127.0.0.1:{port}/publish", json={"n": n}, timeout=10).json()["id"] for n in range(5)]
            assert take(subscription, 5) == [{"n": n} for n in range(5)] and subscription.last_id == ids[-1]
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_slow_subscriber_is_bounded_and_the_others_get_everything(channel: str) -> None:
    broadcast, publisher = Broadcast(SHARED, namespace=NS, maxsize=10), Broadcast(SHARED, namespace=NS)
    with broadcast.subscribe(channel) as slow, broadcast.subscribe(channel, maxsize=1000) as fast:
        for n in range(300):
            publisher.publish(channel, n)
        assert take(fast, 300) == list(range(300))
        deadline = time.monotonic() + 10
        while slow.dropped < 290:  # the listener hands each message to one subscriber after the other
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert len(slow.queued()) == 10 and slow.dropped == 290
        assert slow.queued() == list(range(290, 300))


@pytest.mark.parametrize("swallowed_as", ["a timeout", "nothing"])
def test_stopping_a_cluster_service_stops_it_even_when_redis_py_swallows_the_cancel(
    channel: str, monkeypatch: pytest.MonkeyPatch, swallowed_as: str
) -> None:
    from tether import Tether
    from tether.live.cluster import ClusterTurns

    async def take(self: ClusterTurns) -> bool:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:  # what redis-py's reads under asyncio.timeout can do on 3.11
            if swallowed_as == "a timeout":
                raise redis.TimeoutError("Timeout reading from socket") from None
        return False

    monkeypatch.setattr(ClusterTurns, "take", take)
    app = Tether(__name__)
    app.config["BROADCAST_URL"] = SHARED
    stopped = threading.Event()

    @app.periodic(0.1, name=channel, across="cluster")
    def tick() -> None:
        """Never runs: taking a turn hangs until the service is stopped."""

    async def main() -> None:
        service = app.periodic_services[channel]
        service.start(asyncio.get_running_loop())
        await asyncio.sleep(0.05)
        await service.stop()
        stopped.set()

    # In a thread of its own: a service that swallows the cancel keeps asyncio.run() from returning.
    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    assert stopped.wait(30), "stop() did not stop the service"


def test_subscribing_to_a_followed_channel_takes_no_round_trip_and_misses_nothing(channel: str) -> None:
    """Subscribes made on an event loop while another process publishes: the
    first asks Redis where the channel stands, the others start where the
    listener's reading stands, with no round trip (which would hold the loop
    and its connections up). Each gets every message published after its
    subscribe returned, once, in order."""
    publisher, listener = Broadcast(SHARED, namespace=NS), Broadcast(SHARED, namespace=NS)
    backend = listener.backend
    asked: list[str] = []
    for name in ("tail", "catch_up"):
        method = getattr(backend, name)
        setattr(backend, name, lambda *args, method=method, name=name: asked.append(name) or method(*args))
    total, acked = 400, [0]

    def publish_all() -> None:
        for n in range(total):
            publisher.publish(channel, n)
            acked[0] = n + 1

    async def main() -> list[tuple[int, t.Any]]:
        publisher.publish(channel, "before")
        made = [(0, listener.subscribe(channel, maxsize=total))]
        thread = threading.Thread(target=publish_all)
        thread.start()
        while thread.is_alive():
            subscription = listener.subscribe(channel, maxsize=total)
            made.append((acked[0], subscription))
            await asyncio.sleep(0.002)
        thread.join()
        return made

    made = asyncio.run(main())
    assert asked == ["tail", "catch_up"] and len(made) > 10
    for acked_then, subscription in made:
        expected = total - acked_then - 1  # published after the subscribe returned, at least
        deadline = time.monotonic() + 10
        while not subscription.queued() or subscription.queued()[-1] != total - 1:
            assert time.monotonic() < deadline, subscription.queued()
            time.sleep(0.01)
        got = subscription.queued()
        assert got == list(range(got[0], total)) and len(got) >= expected
