"""The app's logger (``app.logger``): named after the app, given a handler only
when logging is not configured for its level, writing to the request's
``wsgi.errors`` during a request and to stderr otherwise; as Flask's is."""

from __future__ import annotations

import logging
import sys
import typing as t

from ..contexts.ctx import _cv_request
from ..locals import LocalProxy

__all__ = ["create_logger", "default_handler", "has_level_handler", "wsgi_errors_stream"]


def _errors_stream() -> t.TextIO:
    ctx = _cv_request.get(None)
    if ctx is not None:
        stream = ctx.request.environ.get("wsgi.errors")
        if stream is not None:
            return t.cast(t.TextIO, stream)
    return sys.stderr


#: The current request's ``wsgi.errors``, else ``sys.stderr``.
wsgi_errors_stream: t.TextIO = t.cast(t.TextIO, LocalProxy(_errors_stream))


def has_level_handler(logger: logging.Logger) -> bool:
    """Whether a handler on ``logger`` or an ancestor it propagates to takes
    records of its effective level."""
    level = logger.getEffectiveLevel()
    current: logging.Logger | None = logger
    while current is not None:
        if any(handler.level <= level for handler in current.handlers):
            return True
        if not current.propagate:
            break
        current = current.parent
    return False


#: The handler an app's logger gets when nothing handles its level.
default_handler = logging.StreamHandler(wsgi_errors_stream)
default_handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s in %(module)s: %(message)s"))


class _LoggingApp(t.Protocol):
    @property
    def name(self) -> str: ...

    @property
    def debug(self) -> bool: ...


def create_logger(app: _LoggingApp) -> logging.Logger:
    """The logger named after ``app``: at DEBUG in debug mode unless a level is
    set, with :data:`default_handler` unless something handles its level."""
    logger = logging.getLogger(app.name)
    if app.debug and not logger.level:
        logger.setLevel(logging.DEBUG)
    if not has_level_handler(logger):
        logger.addHandler(default_handler)
    return logger
