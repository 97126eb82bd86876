"""Types shared by every layer: the WSGI and ASGI call signatures, and the
application and request as the context layer sees them.

The contexts sit below the application, so they cannot name its classes (not
even in annotations: that would make an import circle). They name these
Protocols instead, which ``tether.application`` satisfies.
"""

from __future__ import annotations

import logging
import typing as t
from collections.abc import Awaitable, Callable, Iterable, MutableMapping

if t.TYPE_CHECKING:
    from werkzeug.routing import MapAdapter

__all__ = [
    "ASGIApp",
    "ContextApp",
    "Message",
    "Receive",
    "RequestLike",
    "Scope",
    "Send",
    "StartResponse",
    "TeardownFunc",
    "WSGIApp",
    "WSGIEnvironment",
]

WSGIEnvironment = dict[str, t.Any]
StartResponse = Callable[..., t.Any]
WSGIApp = Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]

Scope = dict[str, t.Any]
Message = dict[str, t.Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TeardownFunc = Callable[[BaseException | None], t.Any]


class RequestLike(t.Protocol):
    """What a request context needs of its request."""

    method: str
    path: str

    @property
    def blueprints(self) -> list[str]: ...

    def match_url_later(self, app: t.Any) -> None:
        """Match the URL with ``app`` when routing data is first read."""

    def match_url(self, app: t.Any) -> None:
        """Match the URL with ``app`` now."""

    def close(self) -> None:
        """Release the request's uploaded files, if it parsed any."""


class ContextApp(t.Protocol):
    """What the contexts need of an application (read-only, so that the
    application's more precise types satisfy it)."""

    @property
    def name(self) -> str: ...

    @property
    def logger(self) -> logging.Logger: ...

    @property
    def config(self) -> dict[str, t.Any]: ...

    @property
    def request_class(self) -> Callable[[WSGIEnvironment], t.Any]: ...

    @property
    def app_ctx_globals_class(self) -> Callable[[], t.Any]: ...

    @property
    def teardown_appcontext_funcs(self) -> list[TeardownFunc]: ...

    @property
    def teardown_request_funcs(self) -> t.Mapping[str | None, list[TeardownFunc]]: ...

    @property
    def teardown_websocket_funcs(self) -> t.Mapping[str | None, list[TeardownFunc]]: ...

    def create_url_adapter(self, request: t.Any, /) -> MapAdapter | None: ...

    def open_request_session(self, ctx: t.Any, /) -> MutableMapping[str, t.Any]: ...
