"""Async publishing to Redis, batched: what one event loop publishes while a
publish is on its way goes out next, together, in one pipeline.

One publisher at a time pays one round trip per message; many publishing at
once share round trips, in the order they published.
"""

from __future__ import annotations

import asyncio
import typing as t

import redis
import redis.asyncio as aioredis

__all__ = ["ENCODING_ERRORS", "Publisher"]

#: redis-py's encoding of keys: every str, lone surrogates included, round-trips.
ENCODING_ERRORS = "surrogatepass"


class Publisher:
    """One event loop's publishing connection; see the module docstring."""

    def __init__(self, url: str, history: int, unavailable: t.Callable[[Exception], Exception]) -> None:
        #: The loop's connection, which reads a channel's newest id too (``atail``).
        self.client = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, encoding_errors=ENCODING_ERRORS
        )
        self._history = history
        self._unavailable = unavailable
        self._queued: list[tuple[str, dict[str, str], asyncio.Future[str]]] = []
        #: The task sending what was queued, or ``True`` while one publish is sent alone.
        self._sending: asyncio.Task[None] | bool | None = None

    async def publish(self, key: str, fields: dict[str, str]) -> str:
        """Append a message of ``fields`` to the stream ``key``; its id."""
        if self._sending is None and not self._queued:  # nobody else is publishing: no task, no future
            self._sending = True
            try:
                message_id: t.Any = await self.client.xadd(key, fields, maxlen=self._history, approximate=True)  # type: ignore[arg-type]
            except redis.RedisError as e:
                raise self._unavailable(e) from e
            finally:
                self._sending = None
                if self._queued:  # others queued meanwhile
                    self._sending = asyncio.get_running_loop().create_task(self._send())
            return _text(message_id)
        result: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queued.append((key, fields, result))
        return await result

    async def _send(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    pipeline = self.client.pipeline(transaction=False)
                    for key, fields, _ in batch:
                        pipeline.xadd(key, fields, maxlen=self._history, approximate=True)  # type: ignore[arg-type]
                    ids: list[t.Any] = await pipeline.execute()
                except redis.RedisError as e:
                    for _, _, result in batch:
                        if not result.done():
                            result.set_exception(self._unavailable(e))
                    continue
                for (_, _, result), message_id in zip(batch, ids, strict=True):
                    if not result.done():
                        result.set_result(_text(message_id))
        finally:
            self._sending = None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
