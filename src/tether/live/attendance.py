"""Presence on the live endpoint: ``app.live("/live", presence=who)``.

``who(channel)`` says whether, and as whom, a connection is present in a
channel it was allowed to join: ``(member, meta)`` enters it there
(``app.presence.enter(channel, member, meta)``), ``None`` follows the channel
without being in it. It runs where a channel rule runs, in the connection's
request or WebSocket context (``session``, ``g``), and may be ``async def``.

A WebSocket connection is in a channel from its join to its leave, or its end;
an SSE stream (which cannot be told to leave) for as long as it is open. The
``joined`` event of a channel entered carries who is there, itself included
(``"members": [{"member", "meta"}, ...]``, earliest first), so the client need
not ask; join and leave events come on the channel itself, as for any
``enter``. A worker that dies takes its connections out after its presence TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import typing as t

from ..contexts.steps import run_coroutine
from .channels import RunSync
from .presence import Here, Presence

__all__ = ["Attendance", "Who", "listed"]

#: ``who(channel)``: ``(member, meta)``, ``None``, or an awaitable of either.
Who = t.Callable[[str], t.Any]


def listed(members: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """``members()`` as the client is sent it: a list, so that its order (and
    member ids that look like numbers) survive JavaScript objects."""
    return [{"member": member, "meta": meta} for member, meta in members.items()]


class Attendance:
    """The channels one connection of the live endpoint is present in."""

    def __init__(self, who: Who, presence: Presence) -> None:
        self._who = who
        self._presence = presence
        #: Per channel entered, its handle and the join on its way (a WebSocket
        #: that goes mid-join still leaves, once the join is done).
        self._entered: dict[str, tuple[Here, asyncio.Future[Here] | None]] = {}

    def _handle(self, channel: str, answer: t.Any) -> Here | None:
        if answer is None:
            return None
        if not isinstance(answer, tuple) or len(answer) != 2:
            raise TypeError(f"The live endpoint's presence function returns (member, meta) or None, not {answer!r}.")
        member, meta = answer
        return self._presence.enter(channel, member, meta)

    async def aenter(self, channel: str, run_sync: RunSync) -> list[dict[str, t.Any]] | None:
        """Enter ``channel`` if ``who`` says so (once however often it is
        joined), from async code; who is there then, or ``None`` when not in it.
        A sync ``who`` runs through ``run_sync`` (off the loop)."""
        if channel not in self._entered:
            if inspect.iscoroutinefunction(self._who):
                answer = await self._who(channel)
            else:
                answer = await run_sync(functools.partial(self._who, channel))
                if inspect.isawaitable(answer):
                    answer = await answer
            here = self._handle(channel, answer)
            if here is None:
                return None
            joining = asyncio.ensure_future(here.ajoin())
            self._entered[channel] = (here, joining)
            await asyncio.shield(joining)
        return listed(await self._presence.amembers(channel))

    async def aleave(self, channel: str) -> None:
        """Leave ``channel``, if in it."""
        entry = self._entered.pop(channel, None)
        if entry is not None:
            await _aleave(*entry)

    async def aleave_all(self) -> None:
        """Leave every channel: the connection has ended."""
        entries, self._entered = list(self._entered.values()), {}
        for entry in entries:
            await _aleave(*entry)

    def enter(self, channel: str) -> list[dict[str, t.Any]] | None:
        """:meth:`aenter` from sync code (the SSE fallback's view)."""
        if channel not in self._entered:
            answer = self._who(channel)
            if inspect.isawaitable(answer):
                answer = run_coroutine(answer)
            here = self._handle(channel, answer)
            if here is None:
                return None
            self._entered[channel] = (here.join(), None)
        return listed(self._presence.members(channel))

    def leave_all(self) -> None:
        """Leave every channel, from sync code: the stream has ended."""
        entries, self._entered = list(self._entered.values()), {}
        for here, _ in entries:
            here.leave()


async def _aleave(here: Here, joining: asyncio.Future[Here] | None) -> None:
    if joining is not None:
        with contextlib.suppress(Exception):
            await joining  # a join that failed left nothing to leave
    await here.aleave()
