"""Message ids and a channel's bounded history, so that a subscriber that comes
back with the id of the last message it saw gets exactly what it missed.

Ids have Redis Streams' form, ``<milliseconds>-<sequence>``, and grow with
every message of a channel. A subscriber whose id is older than what the
history still holds gets a :class:`Gap` first: it must reload its state, since
the stream cannot be complete.

A published message travels as one :class:`Delivery`, shared by every
subscriber it reaches: its channel, id, message and optional event name.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import re
import time
import typing as t

__all__ = ["Delivery", "Gap", "History", "IdClock", "id_key"]


class Delivery(t.NamedTuple):
    """A message published to ``channel``, with its ``id`` and the ``event``
    name it was published with (``None`` for none)."""

    channel: str
    id: str
    message: t.Any
    event: str | None = None


@dataclasses.dataclass(frozen=True)
class Gap:
    """Some messages after ``last_id`` on ``channel`` are no longer in the
    history: what follows is not all that was published. Reload the state."""

    channel: str
    last_id: str


#: An id as a client may send it back: ASCII digits only (``str.isdigit``
#: also accepts ``²`` and other digits ``int`` refuses), each part short enough
#: to be one of Redis's unsigned 64-bit numbers.
_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})", re.ASCII)
_ID_PART_MAX = 2**64 - 1


def id_key(message_id: str) -> tuple[int, int] | None:
    """The sort key of an id, or ``None`` when it is not one (a malformed id
    from a client is then treated like an unknown one: a gap, or the whole
    history)."""
    match = _ID.fullmatch(message_id)
    if match is None:
        return None
    milliseconds, sequence = int(match[1]), int(match[2])
    if milliseconds > _ID_PART_MAX or sequence > _ID_PART_MAX:
        return None
    return milliseconds, sequence


class IdClock:
    """Ids that grow with every call, even when the wall clock goes back."""

    def __init__(self) -> None:
        self._last = (0, 0)

    def next(self) -> tuple[tuple[int, int], str]:
        milliseconds = time.time_ns() // 1_000_000
        last_ms, last_seq = self._last
        key = (milliseconds, 0) if milliseconds > last_ms else (last_ms, last_seq + 1)
        self._last = key
        return key, f"{key[0]}-{key[1]}"


class History:
    """The last ``size`` messages of each channel of this process, with what
    is needed to tell a complete resume from a gap."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.clock = IdClock()
        self.started = self.clock.next()[0]
        #: Per channel, the kept messages with their ids' sort keys.
        self._entries: dict[str, collections.deque[tuple[tuple[int, int], Delivery]]] = {}
        #: Per channel, the key of the newest message no longer kept.
        self._trimmed: dict[str, tuple[int, int]] = {}
        #: Channels to forget, by deadline (``time.monotonic()``).
        self._expiring: list[tuple[float, str]] = []

    def expire(self, channel: str, seconds: float) -> None:
        """Forget ``channel``'s history after ``seconds`` (a finished task's story)."""
        heapq.heappush(self._expiring, (time.monotonic() + seconds, channel))

    def _forget_expired(self) -> None:
        now = time.monotonic()
        while self._expiring and self._expiring[0][0] <= now:
            channel = heapq.heappop(self._expiring)[1]
            self._entries.pop(channel, None)
            self._trimmed.pop(channel, None)

    def append(self, channel: str, message: t.Any, event: str | None = None) -> Delivery:
        if self._expiring:
            self._forget_expired()
        key, message_id = self.clock.next()
        delivery = Delivery(channel, message_id, message, event)
        if self.size:
            entries = self._entries.get(channel)
            if entries is None:
                entries = self._entries[channel] = collections.deque()
            if len(entries) >= self.size:
                self._trimmed[channel] = entries.popleft()[0]
            entries.append((key, delivery))
        else:
            self._trimmed[channel] = key
        return delivery

    def newest(self, channel: str) -> str | None:
        """The id of the newest message of ``channel``, if any."""
        entries = self._entries.get(channel)
        return entries[-1][1].id if entries else None

    def since(self, channel: str, last_id: str) -> tuple[list[Delivery], bool]:
        """The messages after ``last_id``, and whether some may be missing
        (``last_id`` is older than the history, from before this process
        started, or not an id). ``"0-0"`` asks for the whole history."""
        key = id_key(last_id)
        entries = [delivery for kept, delivery in self._entries.get(channel, ()) if key is None or kept > key]
        trimmed = self._trimmed.get(channel)
        gap = key is None or (0 < key[0] and key < self.started) or (trimmed is not None and key < trimmed)
        return entries, gap
