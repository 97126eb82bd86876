"""In-process fan-out: channels, bounded queues, overflow policies, unsubscribing."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

import tether
from tether import Broadcast, EventStream, websocket
from tether.live.broadcast import Gap, SubscriberTooSlow


def test_subscribers_get_only_their_channels() -> None:
    broadcast = Broadcast()
    alice = broadcast.subscribe("user:alice")
    bob = broadcast.subscribe("user:bob")
    everyone = broadcast.subscribe("all")
    broadcast.publish("user:alice", {"balance": 10})
    broadcast.publish("user:bob", {"balance": 20})
    broadcast.publish("all", "news")
    assert next(alice) == {"balance": 10} and next(bob) == {"balance": 20} and next(everyone) == "news"
    assert alice._queue == collections_empty() and bob._queue == collections_empty()
    for subscription in (alice, bob, everyone):
        subscription.close()
    assert broadcast.subscriber_count() == 0 and broadcast._subscriptions == {}


def collections_empty() -> object:
    import collections

    return collections.deque()


def test_async_subscription_and_async_publish() -> None:
    broadcast = Broadcast()

    async def main() -> list[object]:
        got: list[object] = []
        async with broadcast.subscribe("ticks") as subscription:
            async def consume() -> None:
                async for message in subscription:
                    got.append(message)
                    if len(got) == 3:
                        return

            consumer = asyncio.ensure_future(consume())
            await asyncio.sleep(0)
            for n in range(3):
                await broadcast.apublish("ticks", n)
            await asyncio.wait_for(consumer, 5)
        return got

    assert asyncio.run(main()) == [0, 1, 2]
    assert broadcast.subscriber_count("ticks") == 0


def test_publish_from_another_thread_wakes_an_async_subscriber() -> None:
    broadcast = Broadcast()

    async def main() -> object:
        subscription = broadcast.subscribe("x")
        threading.Timer(0.05, lambda: broadcast.publish("x", "from a thread")).start()
        try:
            return await asyncio.wait_for(subscription.__anext__(), 5)
        finally:
            subscription.close()

    assert asyncio.run(main()) == "from a thread"


def test_slow_subscriber_is_bounded_and_does_not_slow_others() -> None:
    broadcast = Broadcast(maxsize=5)
    slow = broadcast.subscribe("prices")
    fast = broadcast.subscribe("prices")
    fast_got: list[int] = []
    for n in range(100):
        broadcast.publish("prices", n)
        fast_got.append(next(fast))
    assert fast_got == list(range(100))
    assert len(slow._queue) == 5 and slow.dropped == 95
    assert [next(slow) for _ in range(5)] == [95, 96, 97, 98, 99]


def test_a_subscription_holds_a_queue_only_while_something_is_queued() -> None:
    """Idle subscriptions (most, with direct sends) share one empty queue: a
    deque each would cost every connection 0.75 KiB."""
    broadcast = Broadcast(maxsize=3)
    first, second = broadcast.subscribe("prices"), broadcast.subscribe("prices")
    assert first._queue is second._queue
    for n in range(5):
        broadcast.publish("prices", n)
    assert first.queued() == second.queued() == [2, 3, 4] and first.dropped == 2
    assert first._queue is not second._queue
    assert [next(first) for _ in range(3)] == [2, 3, 4]
    broadcast.publish("prices", 5)
    assert [next(second) for _ in range(3)] == [3, 4, 5] and second.dropped == 3
    assert next(first) == 5
    assert first._queue is second._queue  # both drained: back to the shared one


def test_disconnect_policy_ends_a_slow_subscription() -> None:
    broadcast = Broadcast()
    subscription = broadcast.subscribe("prices", maxsize=2, overflow="disconnect")
    for n in range(3):
        broadcast.publish("prices", n)
    with pytest.raises(SubscriberTooSlow):
        next(subscription)
    assert broadcast.subscriber_count("prices") == 0
    with pytest.raises(ValueError, match="overflow"):
        broadcast.subscribe("x", overflow="block")


def test_closing_ends_a_blocked_sync_consumer() -> None:
    broadcast = Broadcast()
    subscription = broadcast.subscribe("quiet")
    received: list[object] = []
    consumer = threading.Thread(target=lambda: received.extend(subscription))
    consumer.start()
    broadcast.publish("quiet", "one")
    subscription.close()
    consumer.join(5)
    assert not consumer.is_alive() and received == ["one"]


def test_app_broadcast_feeds_event_streams_and_websockets(app: tether.Tether) -> None:
    app.config["BROADCAST_QUEUE_SIZE"] = 10

    @app.route("/feed/<user>")
    def feed(user: str) -> EventStream:
        return EventStream(app.broadcast.subscribe(f"user:{user}"))

    @app.websocket("/live/<user>")
    async def live(user: str) -> None:
        updates = app.broadcast.subscribe(f"user:{user}")
        await websocket.send("subscribed")
        await websocket.relay(updates)

    @app.post("/publish/<user>")
    def publish(user: str) -> str:
        app.broadcast.publish(f"user:{user}", tether.request.json)
        return "ok"

    client = app.test_client()
    with client.websocket("/live/alice") as alice_ws:
        assert alice_ws.receive() == "subscribed"
        client.post("/publish/bob", json={"for": "bob"})
        client.post("/publish/alice", json={"for": "alice"})
        assert alice_ws.receive_json() == {"for": "alice"}
    assert app.broadcast.subscriber_count("user:alice") == 0

    def publish_later() -> None:
        while app.broadcast.subscriber_count("user:carol") == 0:
            threading.Event().wait(0.01)
        app.broadcast.publish("user:carol", {"n": 1})

    # Werkzeug's client returns once the first chunk arrived: publish meanwhile.
    threading.Thread(target=publish_later).start()
    response = client.get("/feed/carol", buffered=False)
    events = response.iter_events()
    assert json.loads(next(events)["data"]) == {"n": 1}
    response.close()
    assert app.broadcast.subscriber_count("user:carol") == 0


def test_publish_from_spawned_work_and_periodic_services(app: tether.Tether) -> None:
    got: list[object] = []
    subscription = app.broadcast.subscribe("jobs")

    @app.periodic(0.01, name="ticker")
    async def ticker() -> None:
        await app.broadcast.apublish("jobs", "periodic")

    def job() -> None:
        app.broadcast.publish("jobs", "spawned")

    with app.app_context():
        app.spawn(job).result(5)
    got.append(next(subscription))
    with app.test_client().lifespan():
        got.append(next(subscription))
    subscription.close()
    assert got == ["spawned", "periodic"]




def test_relay_takes_a_burst_whole_and_in_order(app: tether.Tether) -> None:
    """A burst as large as the queue reaches a relayed socket whole, published
    from another thread (woken through the loop) and from the socket's own loop
    (woken directly); the relay takes queued messages without waiting."""

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.relay(app.broadcast.subscribe("burst"), as_json=False)

    @app.post("/burst")
    async def burst() -> str:
        for i in range(100):
            await app.broadcast.apublish("burst", f"loop {i}")
        return "sent"

    client = tether.testing.TetherClient(app, asgi=True)
    with client.websocket("/ws") as socket:
        while app.broadcast.subscriber_count("burst") < 1:
            threading.Event().wait(0.01)
        for i in range(100):
            app.broadcast.publish("burst", f"thread {i}")
        assert [socket.receive() for _ in range(100)] == [f"thread {i}" for i in range(100)]
        assert client.post("/burst").text == "sent"
        assert [socket.receive() for _ in range(100)] == [f"loop {i}" for i in range(100)]
    assert app.broadcast.subscriber_count("burst") == 0


def test_resuming_after_last_id_replays_what_was_missed_then_goes_live() -> None:
    broadcast = Broadcast()
    ids = [broadcast.publish("c", f"m{n}") for n in range(5)]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == 5
    with broadcast.subscribe("c", last_id=ids[1]) as subscription:
        assert [next(subscription) for _ in range(3)] == ["m2", "m3", "m4"]
        assert subscription.last_id == ids[4]
        live = broadcast.publish("c", "m5")
        assert next(subscription) == "m5" and subscription.last_id == live
        assert subscription.queued() == []
    with broadcast.subscribe("c", last_id=live) as caught_up:
        assert caught_up.queued() == []


def test_a_gap_comes_first_when_the_history_cannot_cover_last_id() -> None:
    broadcast = Broadcast(history=3)
    ids = [broadcast.publish("c", n) for n in range(6)]
    with broadcast.subscribe("c", last_id=ids[0]) as subscription:
        assert subscription.queued() == [Gap("c", ids[0]), 3, 4, 5]
    with broadcast.subscribe("c", last_id="not an id") as subscription:
        assert subscription.queued()[0] == Gap("c", "not an id")
    with broadcast.subscribe("c", last_id="1-0") as subscription:  # from before this process started
        assert subscription.queued()[0] == Gap("c", "1-0")


def test_a_replay_longer_than_the_queue_comes_whole_and_live_traffic_keeps_its_bound() -> None:
    """The queue bounds live traffic; a replay is bounded by the history."""
    broadcast = Broadcast(maxsize=5, history=100)
    ids = [broadcast.publish("c", n) for n in range(60)]
    with broadcast.subscribe("c", last_id=ids[9]) as subscription:
        assert subscription.queued() == list(range(10, 60))  # 50 missed: no gap, nothing dropped
        for n in range(60, 68):  # 8 live, the queue holds 5 of them: the 3 oldest live ones go
            broadcast.publish("c", n)
        assert subscription.queued() == [*range(10, 60), *range(63, 68)] and subscription.dropped == 3
        assert [next(subscription) for _ in range(52)] == [*range(10, 60), 63, 64]
        for n in range(68, 75):  # taking the replay gave the live traffic no more room
            broadcast.publish("c", n)
        assert subscription.queued() == list(range(70, 75)) and subscription.dropped == 8
    ids = [broadcast.publish("d", n) for n in range(60)]
    with broadcast.subscribe("d", last_id=ids[9], overflow="disconnect") as subscription:
        for n in range(60, 65):
            broadcast.publish("d", n)
        assert subscription.queued() == list(range(10, 65)) and not subscription.closed
        assert [next(subscription) for _ in range(20)] == list(range(10, 30))
        broadcast.publish("d", 65)  # a sixth live one: too slow for the live traffic
        with pytest.raises(SubscriberTooSlow):
            next(subscription)


def test_what_comes_while_a_long_replay_is_read_is_live_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    broadcast = Broadcast(maxsize=5, history=100)
    ids = [broadcast.publish("c", n) for n in range(60)]
    catch_up = broadcast.backend.catch_up

    def catching_up(channel: str, last_id: str) -> object:
        found = catch_up(channel, last_id)
        for n in range(60, 68):  # delivered while the subscription catches up: held, then bounded as live
            broadcast.publish(channel, n)
        return found

    monkeypatch.setattr(broadcast.backend, "catch_up", catching_up)
    with broadcast.subscribe("c", last_id=ids[9]) as subscription:
        assert subscription.queued() == [*range(10, 60), *range(63, 68)] and subscription.dropped == 3


def test_drop_oldest_drops_live_messages_of_any_channel_never_a_replay() -> None:
    broadcast = Broadcast(maxsize=3, history=100)
    ids = [broadcast.publish("b", f"b{n}") for n in range(11)]
    with broadcast.subscribe_many(["a"]) as subscription:
        broadcast.publish("a", "a1")
        broadcast.publish("a", "a2")
        subscription.join("b", last_id=ids[0])
        replay = [f"b{n}" for n in range(1, 11)]
        broadcast.publish("b", "live b1")
        broadcast.publish("b", "live b2")  # a fourth live message: a1 goes
        assert [d.message for d in subscription.queued()] == ["a2", *replay, "live b1", "live b2"]
        broadcast.publish("a", "a3")
        assert [d.message for d in subscription.queued()] == [*replay, "live b1", "live b2", "a3"]
        assert subscription.dropped == 2
        subscription.leave("b")  # its replay leaves with it: the bound is 3 live messages again
        for n in range(4, 7):
            broadcast.publish("a", f"a{n}")
        assert [d.message for d in subscription.queued()] == ["a4", "a5", "a6"] and subscription.dropped == 3


def test_resuming_while_others_publish_loses_and_repeats_nothing() -> None:
    broadcast = Broadcast(maxsize=5000, history=5000)
    first = broadcast.publish("c", 0)
    publisher = threading.Thread(target=lambda: [broadcast.publish("c", n) for n in range(1, 3000)])
    publisher.start()
    with broadcast.subscribe("c", last_id=first) as subscription:
        publisher.join()
        received = subscription.queued()
    assert received == list(range(1, 3000))


def test_event_stream_sends_ids_and_resumes_from_last_event_id(app: tether.Tether) -> None:
    @app.route("/feed")
    def feed() -> EventStream:
        return EventStream(app.broadcast.subscribe("news", last_id=tether.request.last_event_id))

    ids = [app.broadcast.publish("news", {"n": n}) for n in range(3)]
    client = app.test_client()
    events = client.get("/feed", headers={"Last-Event-ID": ids[0]}, buffered=False).iter_events()
    assert [next(events) for _ in range(2)] == [
        {"id": ids[1], "data": '{"n": 1}'},
        {"id": ids[2], "data": '{"n": 2}'},
    ]
    events.close()
    events = client.get("/feed", headers={"Last-Event-ID": "1-0"}, buffered=False).iter_events()
    gap = next(events)  # an id from before this process: what came between is not known
    assert gap["event"] == "gap" and json.loads(gap["data"]) == {"channel": "news", "last_id": "1-0"}
    assert next(events)["id"] == ids[0]
    events.close()
    events = client.get("/feed", headers={"Last-Event-ID": "0-0"}, buffered=False).iter_events()
    assert next(events)["id"] == ids[0]  # "0-0": the whole history, which is complete
    events.close()


def test_waits_that_end_without_a_message_leave_nothing_behind() -> None:
    broadcast = Broadcast("memory://")

    async def main() -> int:
        subscription = broadcast.subscribe("idle")
        for _ in range(50):  # as an SSE stream's keep-alive ends each wait of an idle channel
            waiter = subscription.ready()
            waiter.set_result(None)
        subscription.ready()
        waiting = len(subscription._waiters)
        subscription.close()
        return waiting

    assert asyncio.run(main()) == 1
