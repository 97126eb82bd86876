"""``memory://``: delivery within this process, at once."""

from __future__ import annotations

import typing as t

__all__ = ["Deliver", "MemoryBackend"]

#: Called by a backend for every message published to a subscribed channel.
Deliver = t.Callable[[str, t.Any], None]


class MemoryBackend:
    """Delivers in this process only: one worker's fan-out."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def publish(self, channel: str, message: t.Any) -> None:
        self._deliver(channel, message)

    def publish_now(self, channel: str, message: t.Any) -> None:
        """Publish from synchronous code, from any thread."""
        self._deliver(channel, message)
