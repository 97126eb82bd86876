"""What publishing can raise beyond the caller's own mistakes."""

from __future__ import annotations

__all__ = ["BroadcastUnavailable"]


class BroadcastUnavailable(ConnectionError):
    """The backend's server could not be reached: the message was not published.
    Subscribers stay open; the listener reconnects on its own."""
