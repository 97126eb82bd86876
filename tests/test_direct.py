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
import typing as t
from pathlib import Path

import httpx
import websockets

from support import Servers
from tether.live.broadcast import Broadcast
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
