"""Which page origins may open a WebSocket: the ``Origin`` check of a handshake.

A browser sends ``Origin`` on every WebSocket handshake, and sends the site's
cookies whatever page opened the socket, so a page of another site must not get
one (cross-site WebSocket hijacking). Origins are compared whole, as browsers
serialise them (``scheme://host[:port]``, lower case, no default port), never
as substrings.

Allowed: a handshake without ``Origin`` (not a browser: a browser always sends
it), the page's own origin, and ``WEBSOCKET_ALLOWED_ORIGINS``: one origin as a
``str``, several as a list, tuple or set, ``"*"`` for any. A value that is not
an origin is refused with a message, at startup and at each handshake, rather
than being taken to mean something else.
"""

from __future__ import annotations

import functools
import typing as t
from urllib.parse import urlsplit

from ..application.pipeline import Application
from ..application.wrappers import Request

__all__ = ["allowed_origins", "origin_problem"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
#: The scheme of the page that opens a socket of each request scheme.
_PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def normal_origin(text: str) -> str | None:
    """``text`` as a browser serialises the origin, or ``None`` if it is not one
    (``null``, a bare host, a URL with a path, user info, query or fragment)."""
    try:
        parts = urlsplit(text.strip(" \t"))
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not parts.scheme or not host or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    if parts.netloc.endswith(":") or any(c in host for c in " \t,/\\"):
        return None
    scheme = parts.scheme.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{scheme}://{host}:{port}"


def allowed_origins(setting: t.Any) -> frozenset[str] | None:
    """The origins ``WEBSOCKET_ALLOWED_ORIGINS`` allows, normalised; ``None``
    for any (``"*"``). Raises ``TypeError``/``ValueError`` saying what is wrong."""
    if setting is None:
        return frozenset()
    if isinstance(setting, str):
        return _allowed((setting,))
    if isinstance(setting, (list, tuple, set, frozenset)) and all(isinstance(each, str) for each in setting):
        return _allowed(tuple(setting))
    raise TypeError(
        f"WEBSOCKET_ALLOWED_ORIGINS must be an origin (a str) or a list of them (of str), not {setting!r}"
    )


@functools.lru_cache(maxsize=32)
def _allowed(origins: tuple[str, ...]) -> frozenset[str] | None:
    result = set()
    for each in origins:
        if each == "*":
            return None
        origin = normal_origin(each)
        if origin is None:
            raise ValueError(
                f"WEBSOCKET_ALLOWED_ORIGINS holds {each!r}, which is not an origin: write 'https://app.example.com' "
                "(scheme, host, port if not the default; no path). Several origins go in a list (from the "
                "environment, a JSON list)."
            )
        result.add(origin)
    return frozenset(result)


def own_origins(request: Request) -> set[str]:
    """The origins of the request's own pages: same host and port, its scheme,
    and ``https`` too: a TLS proxy that does not say so makes ``wss`` look like
    ``ws`` here, while a plain ``http`` page never opens a ``wss`` socket."""
    scheme = _PAGE_SCHEME.get(request.scheme.lower(), request.scheme.lower())
    found = set()
    for page_scheme in {scheme, "https"}:
        origin = normal_origin(f"{page_scheme}://{request.host}")
        if origin is not None:
            found.add(origin)
    return found


def origin_problem(app: Application, request: Request) -> str | None:
    """Why the handshake's ``Origin`` may not open a socket here, or ``None``."""
    allowed = allowed_origins(app.config["WEBSOCKET_ALLOWED_ORIGINS"])
    origin = request.headers.get("Origin")
    if origin is None or allowed is None:
        return None
    normal = normal_origin(origin)
    if normal is not None and (normal in allowed or normal in own_origins(request)):
        return None
    return (
        f"Origin {origin!r} may not open a WebSocket here: allowed are this site's own pages "
        f"({', '.join(sorted(own_origins(request)))}) and WEBSOCKET_ALLOWED_ORIGINS."
    )
