"""``memory://``: delivery within this process, at once, with a bounded history
per channel (``tether.live.broadcast.history``)."""

from __future__ import annotations

import threading
import typing as t

from .history import Entry, History

__all__ = ["Deliver", "Joined", "MemoryBackend"]

#: Called by a backend for every message published to a channel, in order.
Deliver = t.Callable[[str, Entry], None]
#: Called when a subscriber joins a channel: what it missed, and whether some may be lost.
Joined = t.Callable[[list[Entry], bool], None]


class MemoryBackend:
    """Delivers in this process only: one worker's fan-out."""

    def __init__(self, deliver: Deliver, history: int) -> None:
        self._deliver = deliver
        self._history = History(history)
        # Ids are given and messages delivered under one lock, so every
        # subscriber sees a channel's messages in the order of their ids.
        self._lock = threading.Lock()

    async def publish(self, channel: str, message: t.Any) -> str:
        return self.publish_now(channel, message)

    def publish_now(self, channel: str, message: t.Any) -> str:
        """Publish from synchronous code, from any thread; the message's id."""
        with self._lock:
            entry = self._history.append(channel, message)
            self._deliver(channel, entry)
        return entry[1]

    def join(self, channel: str, last_id: str | None, joined: Joined) -> None:
        """Call ``joined`` with what was published after ``last_id``, with no
        delivery in between: the subscriber it registers misses nothing and
        gets nothing twice."""
        with self._lock:
            if last_id is None:
                joined([], False)
            else:
                joined(*self._history.since(channel, last_id))
