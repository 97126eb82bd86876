"""Presence scripts from async code, batched: what one event loop calls while a
call is on its way goes out next, together, in one pipeline.

Ten thousand sockets entering at once (a reconnection storm after a deploy)
share round trips on one connection rather than each waiting for a
connection of a pool, or failing for want of one.
"""

from __future__ import annotations

import asyncio
import typing as t

import redis
import redis.asyncio as aioredis

from ..broadcast.redis_publisher import ENCODING_ERRORS
from .scripts import Script

__all__ = ["Batcher"]

_Call = tuple[Script, list[str], list[t.Any], "asyncio.Future[t.Any]"]


class Batcher:
    """One event loop's connection for presence scripts; see the module docstring."""

    def __init__(self, url: str) -> None:
        self._client: t.Any = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, encoding_errors=ENCODING_ERRORS
        )
        self._queued: list[_Call] = []
        #: The task sending what was queued, or ``True`` while one call is sent alone.
        self._sending: asyncio.Task[None] | bool | None = None

    async def run(self, script: Script, keys: list[str], args: list[t.Any]) -> t.Any:
        """Run ``script``; its reply. Raises ``redis.RedisError`` when Redis is unreachable."""
        if self._sending is None and not self._queued:  # nobody else is calling: no task, no future
            self._sending = True
            try:
                return await script.run_async(self._client, keys, args)
            finally:
                self._sending = None
                if self._queued:  # others queued meanwhile
                    self._sending = asyncio.get_running_loop().create_task(self._send())
        result: asyncio.Future[t.Any] = asyncio.get_running_loop().create_future()
        self._queued.append((script, keys, args, result))
        return await result

    async def _send(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                try:
                    replies = await self._pipeline(batch)
                except redis.RedisError as e:
                    for *_, result in batch:
                        if not result.done():
                            result.set_exception(e)
                    continue
                for (*_, result), reply in zip(batch, replies, strict=True):
                    if result.done():
                        continue
                    if isinstance(reply, Exception):
                        result.set_exception(reply)
                    else:
                        result.set_result(reply)
        finally:
            self._sending = None

    async def _pipeline(self, batch: list[_Call]) -> list[t.Any]:
        """The replies of ``batch``, in order. A script Redis has forgotten (it
        restarted) is run again alone, loaded; no other is run twice."""
        pipeline = self._client.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipeline.evalsha(script.sha, len(keys), *keys, *args)
        replies: list[t.Any] = await pipeline.execute(raise_on_error=False)
        for index, reply in enumerate(replies):
            if isinstance(reply, redis.exceptions.NoScriptError):
                script, keys, args, _ = batch[index]
                try:
                    replies[index] = await script.run_async(self._client, keys, args)
                except redis.RedisError as e:
                    replies[index] = e
        return replies

    async def close(self) -> None:
        await self._client.aclose()
