"""The Redis broadcast's async publishing (``redis_publisher``) against the
shared Redis, on channels of each test's own: its one connection per loop
made again when Redis dropped it, and a message Redis refuses failing alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from support import SHARED, own_channel, take
from tether import Broadcast
from tether.live.broadcast import BroadcastUnavailable

NS = "tests"


@pytest.fixture
def channel() -> Iterator[str]:
    """A channel of this test's own (and its ``-refused`` twin), deleted afterwards."""
    yield from own_channel([NS], ("", "-refused"))


def publisher_ids(admin: redis.Redis, broadcast: Broadcast) -> list[int]:
    """The ids, in ``CLIENT LIST``, of ``broadcast``'s publishing connections."""
    name = f"{broadcast.backend.client_name}-publish"  # type: ignore[attr-defined]
    return [client["id"] for client in admin.client_list() if client.get("name") == name]


def test_a_publishing_connection_that_redis_dropped_is_made_again_once(channel: str) -> None:
    """The connection of a loop, killed between two publishes: the next one
    goes out on a new connection, once."""
    admin = redis.Redis.from_url(SHARED)
    publisher, listener = Broadcast(SHARED, namespace=NS), Broadcast(SHARED, namespace=NS)

    async def main() -> list[str]:
        sent = [await publisher.apublish(channel, "first")]
        (connection,) = publisher_ids(admin, publisher)
        admin.client_kill_filter(_id=connection)
        sent.append(await publisher.apublish(channel, "alone"))
        (again,) = publisher_ids(admin, publisher)
        admin.client_kill_filter(_id=again)
        sent += await asyncio.gather(*(publisher.apublish(channel, n) for n in range(3)))
        return sent

    with listener.subscribe(channel) as subscription:
        sent = asyncio.run(main())
        assert take(subscription, 5) == ["first", "alone", 0, 1, 2]
    assert redis.Redis.from_url(SHARED).xlen(f"tether:{NS}:broadcast:{channel}") == 5
    assert len(set(sent)) == 5


def test_a_message_redis_refuses_fails_alone(channel: str) -> None:
    """A stream key holding a string: its publish raises; the ones sent in
    the same round trip, and the next ones, go out."""
    redis.Redis.from_url(SHARED).set(f"tether:{NS}:broadcast:{channel}-refused", "not a stream")
    publisher, listener = Broadcast(SHARED, namespace=NS), Broadcast(SHARED, namespace=NS)

    async def main() -> list[object]:
        with pytest.raises(BroadcastUnavailable, match="refused it.*WRONGTYPE"):
            await publisher.apublish(f"{channel}-refused", "alone")
        together = [publisher.apublish(channel, 0), publisher.apublish(f"{channel}-refused", 1)]
        together += [publisher.apublish(channel, 2), publisher.apublish(channel, 3, event="kind")]
        return [*await asyncio.gather(*together, return_exceptions=True), await publisher.apublish(channel, 4)]

    with listener.subscribe_many([channel]) as subscription:
        results = asyncio.run(main())
        deliveries = take(subscription, 4)
    assert isinstance(results[1], BroadcastUnavailable) and "WRONGTYPE" in str(results[1])
    assert [d.message for d in deliveries] == [0, 2, 3, 4]  # type: ignore[attr-defined]
    assert [d.id for d in deliveries] == [results[0], *results[2:]]  # type: ignore[attr-defined]
    assert [d.event for d in deliveries] == [None, None, "kind", None]  # type: ignore[attr-defined]

