"""Messages sent from where they are published (tether.serving.direct): the
direct sender, a subscription's sink, and both under a real uvicorn with a
client too slow to keep up."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import types
import typing as t
from pathlib import Path

import httpx
import websockets

from support import Servers
from tether.live.broadcast import Broadcast
from tether.live.sse import _frames
from tether.serving.asgi_http import _pump
from tether.serving.direct import DirectSender

SERVERS = Path(__file__).parent / "servers"


def _sender(sent: list[object], gate: asyncio.Event | None = None, error: Exception | None = None) -> DirectSender:
    async def send(message: object) -> None:
        if error is not None:
            raise error
        if gate is not None and not gate.is_set():
            await gate.wait()
        sent.append(message)

    return DirectSender(send, lambda data: {"data": data})


def test_a_send_that_needs_no_wait_happens_within_the_push() -> None:
    async def main() -> list[object]:
        sent: list[object] = []
        sender = _sender(sent)
        assert sender.push("a") and sender.push("b")
        seen = list(sent)  # before any await
        await sender.flush()
        return seen

    assert asyncio.run(main()) == [{"data": "a"}, {"data": "b"}]


def test_a_waiting_send_finishes_in_a_task_and_later_pushes_are_refused_until_it_is_done() -> None:
    async def main() -> tuple[list[object], bool, bool]:
        sent: list[object] = []
        gate = asyncio.Event()
        sender = _sender(sent, gate)
        assert sender.push("first")
        refused = not sender.push("second")
        gate.set()
        await sender.flush()
        return sent, refused, sender.push("third")

    sent, refused, accepted = asyncio.run(main())
    assert refused and accepted
    assert sent == [{"data": "first"}, {"data": "third"}]


def test_a_failed_send_is_raised_by_the_owners_flush() -> None:
    async def main() -> tuple[bool, BaseException | None]:
        sender = _sender([], error=ConnectionResetError("gone"))
        pushed = sender.push("a")
        try:
            await sender.flush()
        except ConnectionResetError as e:
            return pushed, e
        return pushed, None

    pushed, error = asyncio.run(main())
    assert not pushed
    assert isinstance(error, ConnectionResetError)


def test_a_subscription_hands_messages_to_its_sink_only_when_it_may() -> None:
    broadcast = Broadcast("memory://")
    subscription = broadcast.subscribe("c")
    taken: list[tuple[object, str]] = []
    accept = [True]

    def sink(message: object, id: str) -> bool:
        if accept[0]:
            taken.append((message, id))
        return accept[0]

    subscription.push_to(sink)
    first = broadcast.publish("c", 1)
    assert taken == [(1, first)] and subscription.queued() == [] and subscription.last_id == first
    accept[0] = False
    broadcast.publish("c", 2)  # refused: queued
    accept[0] = True
    broadcast.publish("c", 3)  # something is queued: queued behind it, not pushed ahead
    assert subscription.queued() == [2, 3] and len(taken) == 1
    assert [next(subscription), next(subscription)] == [2, 3]
    thread = threading.Thread(target=broadcast.publish, args=("c", 4))  # put on another thread: queued
    thread.start()
    thread.join()
    assert subscription.queued() == [4] and len(taken) == 1
    subscription.close()


def _wait_for_subscribers(base: str, count: int, exactly: bool = False) -> None:
    deadline = time.monotonic() + 20
    while (now := httpx.get(f"{base}/subscribers").json()["count"]) < count or (exactly and now != count):
        assert time.monotonic() < deadline, f"{now} subscribers, not {count}"
        time.sleep(0.05)


def test_a_burst_to_clients_that_do_not_read_arrives_in_order_without_duplicates(serve: Servers) -> None:
    port = serve([sys.executable, "-m", "uvicorn", "--port", "{port}", "burst_app:app"], cwd=SERVERS)
    base = f"http://127.0.0.1:{port}"
    n = 4000

    async def main() -> tuple[list[int], list[int], list[tuple[int, ...]]]:
        sse = socket.create_connection(("127.0.0.1", port))
        sse.sendall(b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\n")
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=2, max_size=None) as ws:
            await asyncio.to_thread(_wait_for_subscribers, base, 2)
            async with httpx.AsyncClient(timeout=60) as http:
                assert (await http.post(f"{base}/burst", params={"n": n, "size": 4000})).json() == {"last": n - 1}
            ws_numbers: list[int] = []
            while not ws_numbers or ws_numbers[-1] != n - 1:
                ws_numbers.append(json.loads(await ws.recv())["n"])
        sse_numbers: list[int] = []
        sse_ids: list[tuple[int, ...]] = []
        reader = sse.makefile("rb")
        while not sse_numbers or sse_numbers[-1] != n - 1:
            line = await asyncio.to_thread(reader.readline)
            assert line, "the stream ended early"
            if line.startswith(b"id: "):
                sse_ids.append(tuple(int(part) for part in line[4:].split(b"-")))
            elif line.startswith(b"data: "):
                sse_numbers.append(json.loads(line[6:])["n"])
        sse.close()
        return ws_numbers, sse_numbers, sse_ids

    ws_numbers, sse_numbers, sse_ids = asyncio.run(main())
    for numbers in (ws_numbers, sse_numbers):
        assert numbers == sorted(set(numbers)), "out of order or repeated"
        assert numbers[-1] == n - 1
    # The stream's client fell behind: a send had to wait, so messages were
    # queued for the subscriber (and the oldest of those dropped) between ones
    # sent from the publish. (uvicorn's WebSocket protocol buffers whatever is
    # sent and never waits, so there every message is sent from the publish.)
    assert len(sse_numbers) < n
    assert len(sse_ids) == len(sse_numbers) and sse_ids == sorted(set(sse_ids))


def test_messages_published_from_threads_and_the_loop_at_once_arrive_in_the_order_of_their_ids(serve: Servers) -> None:
    port = serve([sys.executable, "-m", "uvicorn", "--port", "{port}", "burst_app:app"], cwd=SERVERS)
    base = f"http://127.0.0.1:{port}"
    n = 300

    def read(count: int, lines: t.Iterator[str]) -> list[tuple[int, ...]]:
        ids: list[tuple[int, ...]] = []
        for line in lines:
            if line.startswith("id: "):
                ids.append(tuple(int(part) for part in line[4:].split("-")))
                if len(ids) == count:
                    break
        return ids

    with httpx.Client(timeout=30) as http, http.stream("GET", f"{base}/feed-all") as feed:
        _wait_for_subscribers(base, 1)
        assert httpx.post(f"{base}/mixed", params={"n": n}, timeout=30).json() == {"sent": 4 * n}
        ids = read(4 * n, feed.iter_lines())
    assert len(ids) == 4 * n
    assert ids == sorted(set(ids)), "out of order or repeated"


def test_one_object_published_again_after_a_change_is_encoded_again(serve: Servers) -> None:
    port = serve([sys.executable, "-m", "uvicorn", "--port", "{port}", "burst_app:app"], cwd=SERVERS)
    base = f"http://127.0.0.1:{port}"

    async def over_websockets() -> list[int]:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws, httpx.AsyncClient(timeout=30) as http:
            await asyncio.to_thread(_wait_for_subscribers, base, 1)
            assert (await http.post(f"{base}/same-object")).json() == {"sent": 3}
            return [json.loads(await ws.recv())["n"] for _ in range(3)]

    async def over_sse() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as http, http.stream("GET", f"{base}/feed-all") as feed:
            await asyncio.to_thread(_wait_for_subscribers, base, 1)
            assert (await http.post(f"{base}/same-object")).json() == {"sent": 3}
            got: list[int] = []
            async for line in feed.aiter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:])["n"])
                    if len(got) == 3:
                        return got
        return got

    assert asyncio.run(over_websockets()) == [0, 1, 2]
    _wait_for_subscribers(base, 0, exactly=True)  # the WebSocket's subscription has ended
    assert asyncio.run(over_sse()) == [0, 1, 2]


def _streams_app() -> t.Any:
    """What an event stream's body reads of its app: the JSON encoder."""
    return types.SimpleNamespace(json=types.SimpleNamespace(dumps=json.dumps))


def test_a_slow_and_a_failing_stream_leave_the_others_every_message_in_order() -> None:
    """Event streams on one loop, each sent by the real body pump through a
    direct sender: one client's send waits, one's fails, one publishes from
    inside its send. The others get every message, in the order of their ids."""
    broadcast = Broadcast("memory://")
    names = ["slow", "failing", "publisher", "a", "b"]
    got: dict[str, list[tuple[str, str]]] = {name: [] for name in names}
    gate = asyncio.Event()
    published = 10

    async def main() -> dict[str, BaseException | None]:
        done = asyncio.Event()

        def sender_for(name: str) -> t.Callable[[dict[str, t.Any]], t.Awaitable[None]]:
            async def send(message: dict[str, t.Any]) -> None:
                if name == "failing":
                    raise ConnectionResetError("the client went away")
                if name == "slow":
                    await gate.wait()
                lines = message["body"].decode().splitlines()
                data = next(line[6:] for line in lines if line.startswith("data: "))
                got[name].append((next(line[4:] for line in lines if line.startswith("id: ")), data))
                if name == "publisher" and data == "m1":
                    broadcast.publish("c", "from-send")
                if all(len(got[each]) == published + 1 for each in ("slow", "publisher", "a", "b")):
                    done.set()

            return send

        async def stream(name: str) -> None:
            await _pump(_frames(broadcast.subscribe("c"), 3600, _streams_app(), []), sender_for(name), None, t.cast(t.Any, None))

        tasks = {name: asyncio.ensure_future(stream(name)) for name in names}
        while broadcast.subscriber_count("c") < len(names):
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # every stream waits, its direct sender set
        for n in range(published):
            await broadcast.apublish("c", f"m{n}")
            if n == 4:
                await asyncio.sleep(0)  # the first messages are out; the slow send still waits
        gate.set()
        await asyncio.wait_for(done.wait(), 30)
        for name in ("slow", "publisher", "a", "b"):
            tasks[name].cancel()
        outcomes = await asyncio.gather(*tasks.values(), return_exceptions=True)
        return {name: outcome if isinstance(outcome, BaseException) else None for name, outcome in zip(names, outcomes, strict=True)}

    outcomes = asyncio.run(main())
    assert isinstance(outcomes["failing"], ConnectionResetError)
    assert got["failing"] == []
    # Every message once, in the order of their ids, the same for each stream.
    assert sorted(data for _, data in got["a"]) == sorted([f"m{n}" for n in range(published)] + ["from-send"])
    ids = [tuple(int(part) for part in id.split("-")) for id, _ in got["a"]]
    assert ids == sorted(set(ids))
    assert [data for _, data in got["a"]].index("from-send") > [data for _, data in got["a"]].index("m1")
    for name in ("slow", "publisher", "b"):
        assert got[name] == got["a"], name
    assert broadcast.subscriber_count("c") == 0


def test_a_message_reaches_subscriptions_in_the_order_they_subscribed() -> None:
    broadcast = Broadcast("memory://")
    order: list[int] = []

    def sink_of(n: int) -> t.Callable[[object, str], bool]:
        def sink(message: object, id: str) -> bool:
            order.append(n)
            return True

        return sink

    async def main() -> None:
        subscriptions = [broadcast.subscribe("c") for _ in range(200)]
        for n, subscription in enumerate(subscriptions):
            subscription.ready()  # consumed on this loop: delivered here
            subscription.push_to(sink_of(n))
        await broadcast.apublish("c", "x")
        await asyncio.sleep(0)
        for subscription in subscriptions:
            subscription.close()

    asyncio.run(main())
    assert order == list(range(200))
