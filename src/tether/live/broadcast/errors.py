"""What publishing can raise beyond the caller's own mistakes."""

from __future__ import annotations

__all__ = ["BroadcastUnavailable", "TurnsUnavailable"]


class BroadcastUnavailable(ConnectionError):
    """The backend's server could not be reached: the message was not published.
    Subscribers stay open; the listener reconnects on its own."""


class TurnsUnavailable(RuntimeError):
    """The backend cannot share a periodic service's turns across processes
    (``across="cluster"``); the message says which backend, and what to use."""
