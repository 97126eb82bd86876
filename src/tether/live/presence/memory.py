"""``memory://`` presence: one process's connections, under one lock.

A process that dies takes its presence with it, so nothing expires and
nothing is reaped. Events are published under the lock (a memory broadcast
only queues them), so subscribers hear joins and leaves in the order they
happened.
"""

from __future__ import annotations

import threading
import typing as t

from ..broadcast import Broadcast
from .connection import Connection
from .events import tell

__all__ = ["MemoryPresence"]


class MemoryPresence:
    """See the module docstring and ``connection.Backend``."""

    def __init__(self, broadcast: Broadcast, loads: t.Callable[[str], t.Any]) -> None:
        self._broadcast = broadcast
        self._loads = loads
        self._lock = threading.Lock()
        #: Per channel, its connections in the order they entered.
        self._connections: dict[str, dict[str, Connection]] = {}
        #: Per channel, each member's number of connections.
        self._counts: dict[str, dict[str, int]] = {}

    def join(self, connection: Connection) -> bool:
        channel, member = connection.channel, connection.member
        with self._lock:
            connections = self._connections.setdefault(channel, {})
            if connection.id in connections:
                return False
            connections[connection.id] = connection
            counts = self._counts.setdefault(channel, {})
            counts[member] = counts.get(member, 0) + 1
            first = counts[member] == 1
            if first:
                tell(self._broadcast, channel, "join", member, connection.meta)
        return first

    async def ajoin(self, connection: Connection) -> bool:
        return self.join(connection)

    def leave(self, connection: Connection) -> None:
        channel, member = connection.channel, connection.member
        with self._lock:
            connections = self._connections.get(channel, {})
            if connections.pop(connection.id, None) is None:
                return
            counts = self._counts[channel]
            counts[member] -= 1
            if counts[member]:
                return
            del counts[member]
            if not connections:
                del self._connections[channel], self._counts[channel]
            tell(self._broadcast, channel, "leave", member, connection.meta)

    async def aleave(self, connection: Connection) -> None:
        self.leave(connection)

    def members(self, channel: str) -> dict[str, t.Any]:
        with self._lock:
            connections = list(self._connections.get(channel, {}).values())
        found: dict[str, t.Any] = {}
        for connection in connections:
            if connection.member not in found:
                found[connection.member] = self._loads(connection.encoded)
        return found

    async def amembers(self, channel: str) -> dict[str, t.Any]:
        return self.members(channel)

    def start(self) -> None:
        """Nothing expires in one process: nothing to keep alive."""

    def close(self) -> None:
        with self._lock:
            connections = [c for per_channel in self._connections.values() for c in per_channel.values()]
        for connection in connections:
            self.leave(connection)
