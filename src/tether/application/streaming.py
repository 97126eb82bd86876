"""Streamed bodies produced up to their first chunk before the status is sent.

A generator body that fails at once (reading a bad ``request.json``, a missing
row) must get the response its error deserves (400, 415, the app's handler,
500), not a ``200`` cut off after the headers. So the pipeline produces the
first chunk while it can still choose the status, and keeps it in a
:class:`PrimedBody` that yields it first. Closing the primed body closes the
original one, so a client that leaves still stops the generator.
"""

from __future__ import annotations

import typing as t
from collections.abc import AsyncIterator, Iterator

from ..contexts.steps import NO_KWARGS, Steps

__all__ = ["AsyncPrimedBody", "PrimedBody", "prime_steps"]

T = t.TypeVar("T")
_NOTHING: t.Any = object()


class PrimedBody(Iterator[T]):
    """``first``, then the rest of ``iterator``."""

    def __init__(self, first: T, iterator: Iterator[T]) -> None:
        self._first = first
        self._iterator = iterator

    def __next__(self) -> T:
        first = self._first
        if first is not _NOTHING:
            self._first = _NOTHING
            return first
        return next(self._iterator)

    def close(self) -> None:
        close = getattr(self._iterator, "close", None)
        if close is not None:
            close()


class AsyncPrimedBody(AsyncIterator[T]):
    """``first``, then the rest of the async ``iterator``."""

    def __init__(self, first: T, iterator: AsyncIterator[T]) -> None:
        self._first = first
        self._iterator = iterator

    async def __anext__(self) -> T:
        first = self._first
        if first is not _NOTHING:
            self._first = _NOTHING
            return first
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def prime_steps(body: t.Any) -> Steps[t.Any]:
    """Produce the first chunk of ``body`` (a step, so an async body is awaited
    by whichever driver runs it); the body to send instead of ``body``."""
    if isinstance(body, t.AsyncIterable):
        iterator: t.Any = aiter(body)
        try:
            first = yield _anext, (iterator,), NO_KWARGS
        except StopAsyncIteration:
            return ()
        return AsyncPrimedBody(first, iterator)
    iterator = iter(body)
    try:
        first = yield next, (iterator,), NO_KWARGS
    except StopIteration:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
        return []
    return PrimedBody(first, iterator)


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()
