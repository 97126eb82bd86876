"""One connection's presence in a channel (``Here``), and what a presence
backend offers to keep it (``Backend``).

A member is counted once however many connections (tabs, devices) they have
open: the backend keeps presence per connection, keyed by a random id, and
says when a member's first connection came in (they joined) and when their
last one went (they left).
"""

from __future__ import annotations

import types
import typing as t

__all__ = ["Backend", "Connection", "Here"]


class Connection(t.NamedTuple):
    """What a backend keeps of one connection in a channel."""

    channel: str
    #: Random, 32 hex digits: one per ``enter``.
    id: str
    member: str
    meta: t.Any
    #: ``meta`` as JSON, as stored.
    encoded: str


class Backend(t.Protocol):
    """Keeps connections per channel and announces joins and leaves on the
    channel (``tether.live.presence.events``)."""

    def join(self, connection: Connection) -> bool:
        """Add ``connection``; whether it is its member's first (a join was announced)."""

    async def ajoin(self, connection: Connection) -> bool: ...

    def leave(self, connection: Connection) -> None:
        """Remove ``connection``; a leave is announced if it was its member's last."""

    async def aleave(self, connection: Connection) -> None: ...

    def members(self, channel: str) -> dict[str, t.Any]:
        """Each member present, with the meta of their earliest connection still there."""

    async def amembers(self, channel: str) -> dict[str, t.Any]: ...

    def start(self) -> None:
        """Begin what keeps this process's connections alive and reaps dead ones."""

    def close(self) -> None:
        """Leave every connection still here and stop what :meth:`start` began."""


class Here:
    """A connection in a channel: ``with presence.enter(...) as here:`` (or
    ``async with``) enters on entry and leaves on exit, however the block ends.

    Also usable by hand: :meth:`join` / :meth:`ajoin`, then :meth:`leave` /
    :meth:`aleave`, which does nothing the second time."""

    def __init__(self, backend: Backend, connection: Connection) -> None:
        self._backend = backend
        self.connection = connection
        #: Whether this connection was its member's first (a join event went
        #: out); ``None`` until entered.
        self.first: bool | None = None
        self._state = "new"

    @property
    def channel(self) -> str:
        return self.connection.channel

    @property
    def member(self) -> str:
        return self.connection.member

    @property
    def meta(self) -> t.Any:
        return self.connection.meta

    def _entering(self) -> None:
        if self._state != "new":
            raise RuntimeError("A presence handle enters once; call presence.enter(...) again for a new connection.")
        self._state = "entering"

    def join(self) -> Here:
        """Enter the channel from synchronous code."""
        self._entering()
        try:
            self.first = self._backend.join(self.connection)
        except BaseException:
            self._state = "left"
            raise
        self._state = "in"
        return self

    async def ajoin(self) -> Here:
        """Enter the channel from async code."""
        self._entering()
        try:
            self.first = await self._backend.ajoin(self.connection)
        except BaseException:
            self._state = "left"
            raise
        self._state = "in"
        return self

    def _leaving(self) -> bool:
        leaving = self._state == "in"
        self._state = "left"
        return leaving

    def leave(self) -> None:
        """Leave the channel from synchronous code (once)."""
        if self._leaving():
            self._backend.leave(self.connection)

    async def aleave(self) -> None:
        """Leave the channel from async code (once)."""
        if self._leaving():
            await self._backend.aleave(self.connection)

    def __enter__(self) -> Here:
        return self.join()

    def __exit__(self, *exc: object) -> None:
        self.leave()

    async def __aenter__(self) -> Here:
        return await self.ajoin()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        await self.aleave()

    def __repr__(self) -> str:
        return f"<Here {self.member!r} in {self.channel!r} ({self._state})>"
