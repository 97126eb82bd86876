"""Warnings that a stream of events could repeat without end (a client sending
bad messages, a pool kept full), logged at most once a minute per logger."""

from __future__ import annotations

import logging
import time

__all__ = ["warn_at_most_every_minute"]

_last_warning: dict[str, float] = {}
_WARNING_INTERVAL = 60.0


def warn_at_most_every_minute(logger: logging.Logger, message: str) -> None:
    """Log ``message`` as a warning unless one was logged in the last minute
    (per logger): what keeps happening cannot fill the log."""
    now = time.monotonic()
    if now - _last_warning.get(logger.name, -_WARNING_INTERVAL) >= _WARNING_INTERVAL:
        _last_warning[logger.name] = now
        logger.warning(message)
