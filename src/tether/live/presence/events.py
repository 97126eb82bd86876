"""Join and leave events: published on the channel itself, through the app's
broadcast, so that whoever subscribes to a channel hears who comes and goes.

Every announcement goes through :func:`announce`, the one place that says
what a presence event looks like on the wire: the message
``{"presence": "join" | "leave", "member": <id>, "meta": <meta>}`` published
with the event name ``"presence"`` (a ``Delivery``'s ``event``, the SSE
``event:`` line, and what the browser client's ``on("presence", ...)`` hears).

An event that cannot be published (Redis unreachable) is logged, not raised:
the presence itself was recorded, and ``members()`` stays the truth.
"""

from __future__ import annotations

import logging
import typing as t

from ..broadcast import Broadcast, BroadcastUnavailable

__all__ = ["announce", "tell", "tell_async"]

logger = logging.getLogger("tether.presence")

R = t.TypeVar("R")


def announce(publish: t.Callable[..., R], channel: str, action: str, member: str, meta: t.Any) -> R:
    """Publish that ``member`` joined or left ``channel`` with ``publish``
    (``Broadcast.publish`` or ``apublish``), returning what it returns."""
    return publish(channel, {"presence": action, "member": member, "meta": meta}, event="presence")


def tell(broadcast: Broadcast, channel: str, action: str, member: str, meta: t.Any) -> None:
    """:func:`announce` from synchronous code."""
    try:
        announce(broadcast.publish, channel, action, member, meta)
    except BroadcastUnavailable as e:
        logger.warning("The %s of %r in channel %r was not announced: %s", action, member, channel, e)


async def tell_async(broadcast: Broadcast, channel: str, action: str, member: str, meta: t.Any) -> None:
    """:func:`announce` from async code."""
    try:
        await announce(broadcast.apublish, channel, action, member, meta)
    except BroadcastUnavailable as e:
        logger.warning("The %s of %r in channel %r was not announced: %s", action, member, channel, e)
