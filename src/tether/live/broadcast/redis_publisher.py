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

__all__ = ["Publisher"]


class Publisher:
    """One event loop's publishing connection; see the module docstring."""

    def __init__(self, url: str, history: int, unavailable: t.Callable[[Exception], Exception]) -> None:
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._history = history
        self._unavailable = unavailable
        self._queued: list[tuple[str, str, asyncio.Future[str]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def publish(self, key: str, data: str) -> str:
        """Append ``data`` to the stream ``key``; the message's id."""
        loop = asyncio.get_running_loop()
        result: asyncio.Future[str] = loop.create_future()
        self._queued.append((key, data, result))
        if self._sending is None or self._sending.done():
            self._sending = loop.create_task(self._send())
        return await result

    async def _send(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                ids: list[t.Any]
                if len(batch) == 1:
                    key, data, _ = batch[0]
                    ids = [await self._client.xadd(key, {"m": data}, maxlen=self._history, approximate=True)]
                else:
                    pipeline = self._client.pipeline(transaction=False)
                    for key, data, _ in batch:
                        pipeline.xadd(key, {"m": data}, maxlen=self._history, approximate=True)
                    ids = await pipeline.execute()
            except redis.RedisError as e:
                for _, _, result in batch:
                    if not result.done():
                        result.set_exception(self._unavailable(e))
                continue
            for (_, _, result), message_id in zip(batch, ids, strict=True):
                if not result.done():
                    result.set_result(message_id.decode() if isinstance(message_id, bytes) else message_id)
