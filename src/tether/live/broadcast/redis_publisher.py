"""Async publishing to Redis: one connection per event loop, each ``XADD``
packed here, and what one loop publishes while a publish is on its way sent
next, together, in one write.

One publisher at a time pays one round trip per message; many publishing at
once share round trips, in the order they published. The command is written
as the protocol has it (``pack_xadd``), so a publish costs no argument
encoding in redis-py, and its replies are read from the connection as they
come, with one timeout for the whole round trip rather than one per reply.

A round trip whose connection was found closed before any reply came (Redis
restarted, or dropped an idle client) is sent once more on a new connection:
those messages never reached Redis. A message Redis refuses (its key holds
something else than a stream) fails alone; the others of its round trip go
out.
"""

from __future__ import annotations

import asyncio
import typing as t

import redis
import redis.asyncio as aioredis

__all__ = ["ENCODING_ERRORS", "TIMEOUT", "Publisher", "bulk"]

#: redis-py's encoding of keys: every str, lone surrogates included, round-trips.
ENCODING_ERRORS = "surrogatepass"
#: Seconds a round trip (a write and all its replies) may take.
TIMEOUT = 5.0


def bulk(value: str) -> bytes:
    """``value`` as a command argument (a RESP bulk string)."""
    data = value.encode("utf-8", ENCODING_ERRORS)
    return b"$%d\r\n%s\r\n" % (len(data), data)


class Publisher:
    """One event loop's publishing connection; see the module docstring."""

    def __init__(self, url: str, history: int, unavailable: t.Callable[[Exception], Exception], name: str) -> None:
        #: The loop's client for other commands (``atail``).
        self.client = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=TIMEOUT, encoding_errors=ENCODING_ERRORS
        )
        #: The publishing connection, named ``name`` in ``CLIENT LIST``: no
        #: timeout of its own (the round trip has one).
        self._connection = aioredis.ConnectionPool.from_url(
            url, socket_connect_timeout=2, socket_timeout=None, encoding_errors=ENCODING_ERRORS, client_name=name
        ).make_connection()
        #: ``MAXLEN ~ <history> *``, as every ``XADD`` names it.
        self._trim = b"$6\r\nMAXLEN\r\n$1\r\n~\r\n" + bulk(str(history)) + b"$1\r\n*\r\n"
        self._unavailable = unavailable
        self._queued: list[tuple[bytes, asyncio.Future[str]]] = []
        #: The task sending what was queued, or ``True`` while one publish is sent alone.
        self._sending: asyncio.Task[None] | bool | None = None

    def pack_xadd(self, key: str, fields: dict[str, str]) -> bytes:
        """``XADD key MAXLEN ~ history * field value ...``, packed."""
        parts = [bulk(key), self._trim]
        for name, value in fields.items():
            parts += (bulk(name), bulk(value))
        return b"*%d\r\n$4\r\nXADD\r\n%s" % (6 + 2 * len(fields), b"".join(parts))

    async def publish(self, key: str, fields: dict[str, str]) -> str:
        """Append a message of ``fields`` (the backend's layout) to the stream ``key``; its id."""
        command = self.pack_xadd(key, fields)
        if self._sending is None and not self._queued:  # nobody else is publishing: no task, no future
            self._sending = True
            try:
                (reply,) = await self._round_trip(command, 1)
            except (redis.RedisError, OSError, TimeoutError) as e:
                raise self._unavailable(e) from e
            finally:
                self._sending = None
                if self._queued:  # others queued meanwhile
                    self._sending = asyncio.get_running_loop().create_task(self._send())
            if isinstance(reply, redis.ResponseError):
                raise self._unavailable(reply)
            return _text(reply)
        result: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queued.append((command, result))
        return await result

    async def _send(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    replies = await self._round_trip(b"".join(command for command, _ in batch), len(batch))
                except (redis.RedisError, OSError, TimeoutError) as e:
                    for _, result in batch:
                        if not result.done():
                            result.set_exception(self._unavailable(e))
                    continue
                for (_, result), reply in zip(batch, replies, strict=True):
                    if result.done():
                        continue
                    if isinstance(reply, redis.ResponseError):
                        result.set_exception(self._unavailable(reply))
                    else:
                        result.set_result(_text(reply))
        finally:
            self._sending = None

    async def _round_trip(self, commands: bytes, count: int) -> list[t.Any]:
        """Send ``count`` packed commands and read their replies (a refused
        command's is its ``ResponseError``); once more on a new connection
        when the one there was had closed before any reply came."""
        connection = self._connection
        again = connection.is_connected  # a connection made now is not stale
        while True:
            replies: list[t.Any] = []
            try:
                async with asyncio.timeout(TIMEOUT):
                    await connection.send_packed_command(commands, check_health=False)
                    while len(replies) < count:
                        try:
                            replies.append(await connection.read_response())
                        except redis.ResponseError as e:
                            replies.append(e)
                return replies
            except redis.ConnectionError:
                await connection.disconnect(nowait=True)
                if not again or replies:
                    raise
                again = False
            except BaseException:  # a timeout or a cancel mid-reply: the replies left are unread
                await connection.disconnect(nowait=True)
                raise


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
