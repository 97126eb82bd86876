"""``memory://``: delivery within this process, at once, with a bounded history
per channel (``tether.live.broadcast.history``)."""

from __future__ import annotations

import threading
import typing as t

from .errors import TurnsUnavailable
from .history import Delivery, Gap, History

__all__ = ["Deliver", "MemoryBackend"]

#: Called by a backend with the messages it received, in order (and a
#: :class:`Gap` where messages were lost on the way): as many at once as it
#: has, so that each event loop is handed them in one go.
Deliver = t.Callable[[t.Sequence[Delivery | Gap]], None]


class MemoryBackend:
    """Delivers in this process only: one worker's fan-out."""

    healthy = True

    def __init__(self, deliver: Deliver, history: int) -> None:
        self._deliver = deliver
        self._history = History(history)
        # Ids are given and messages delivered under one lock, so every
        # subscriber sees a channel's messages in the order of their ids.
        self._lock = threading.Lock()

    async def publish(self, channel: str, message: t.Any, event: str | None = None) -> str:
        return self.publish_now(channel, message, event)

    def publish_now(self, channel: str, message: t.Any, event: str | None = None) -> str:
        """Publish from synchronous code, from any thread; the message's id."""
        with self._lock:
            delivery = self._history.append(channel, message, event)
            self._deliver((delivery,))
        return delivery.id

    def tail(self, channel: str) -> str | None:
        with self._lock:
            return self._history.newest(channel)

    async def atail(self, channel: str) -> str | None:
        return self.tail(channel)

    def expire(self, channel: str, seconds: float) -> None:
        with self._lock:
            self._history.expire(channel, seconds)

    def follow(self, channel: str, tail: str | None) -> None:
        """Every channel of this process is delivered: nothing to do."""

    def unfollow(self, channel: str) -> None:
        """Every channel of this process is delivered: nothing to do."""

    def catch_up(self, channel: str, last_id: str) -> tuple[list[Delivery], bool]:
        with self._lock:
            return self._history.since(channel, last_id)

    def turns(self, name: str, interval: float) -> t.NoReturn:
        """None: a turn taken here would be unknown to every other worker, so
        a service meant to run once across them would run once in each."""
        raise TurnsUnavailable(
            "it reaches this process only, so it cannot share turns with other workers (a backend that "
            "reaches them all can)"
        )
