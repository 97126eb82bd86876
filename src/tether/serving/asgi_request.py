"""The request object of an ASGI HTTP or WebSocket scope.

The scope's headers are read in one pass. The request's WSGI-style
``environ`` is built only when something asks for it (most requests never
do), so ``request.environ`` works under both protocols at no cost to the rest.
"""

from __future__ import annotations

import functools
import sys
import typing as t

from werkzeug.datastructures import Headers

from ..application.wrappers import Request
from ..typing import Scope
from .asgi_body import RequestBody

__all__ = ["Framing", "environ_from_scope", "request_from_scope"]


_HEADER_KEYS: dict[bytes, str] = {}


def _header_key(raw_name: bytes) -> str:
    """The environ key of a header name (``b"x-token"`` -> ``HTTP_X_TOKEN``), cached:
    a handful of names recur on every request."""
    key = _HEADER_KEYS.get(raw_name)
    if key is None:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
        if len(_HEADER_KEYS) < 512:
            _HEADER_KEYS[raw_name] = key
    return key


def _wsgi_string(value: str) -> str:
    return value if value.isascii() else value.encode().decode("latin-1")


_BASE_ENVIRON: dict[str, t.Any] = {
    "wsgi.input_terminated": True,
    "wsgi.errors": sys.stderr,
    "wsgi.version": (1, 0),
    "wsgi.multithread": True,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


_PROTOCOLS = {"1.0": "HTTP/1.0", "1.1": "HTTP/1.1", "2": "HTTP/2", "3": "HTTP/3"}


class Framing(t.NamedTuple):
    """How the request body is framed: its declared length, or chunked."""

    length: int | None
    chunked: bool


def request_from_scope(request_class: type[Request], scope: Scope, body: t.Any) -> tuple[Request, Framing]:
    """The request object of an HTTP or WebSocket scope, and how its body is
    framed, read in one pass over the raw headers. Its headers and WSGI-style
    environ are made when first used (most requests use neither), so that
    ``request.headers`` and ``request.environ`` work under both protocols at
    no cost to the rest."""
    root_path = scope.get("root_path", "")
    path = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path):]
    server = scope.get("server") or ("localhost", 80)
    scheme = _SCHEMES.get(scope.get("scheme", "http"), "http")
    client = scope.get("client")
    cookies = False
    length: int | None = None
    chunked = False
    raw_headers = scope["headers"]
    if not isinstance(raw_headers, (list, tuple)):  # any iterable, in ASGI: read it once
        raw_headers = list(raw_headers)
    for raw_name, raw_value in raw_headers:
        name = raw_name.lower()  # lowercase in ASGI, a "should", not a "must"
        if name == b"content-length":
            length = int(raw_value) if raw_value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"cookie":
            cookies = True
    request = request_class.from_parts(  # positional: cheaper than 13 keywords on every request
        # A partial, not a closure: a closure would make every variable it
        # reads a cell, slower to use for the whole of this function.
        functools.partial(_environ, scope, root_path, path, server, scheme, client, body),
        scope.get("method", "GET"),
        scheme,
        server,
        root_path,
        path,
        scope["query_string"],
        functools.partial(_headers, raw_headers),
        client[0] if client else None,
        body if isinstance(body, RequestBody) else None,
        scope["type"] == "websocket",
        scope.get("tether.environ"),
        cookies,
    )
    return request, Framing(length, chunked)


def environ_from_scope(scope: Scope, body: t.Any) -> tuple[dict[str, t.Any], Framing]:
    """The WSGI environ of an HTTP or WebSocket scope, built whole, with ``body``
    as ``wsgi.input``: what a WSGI server would hand the app (for a wrapped
    WSGI entry, ``tether.serving.wsgi_chain``)."""
    request, framing = request_from_scope(Request, scope, body)
    return request.environ, framing


def _headers(raw: t.Iterable[tuple[bytes, bytes]]) -> Headers:
    """The request's headers, made when first used: names lowercased, values
    read as latin-1, several Cookie headers joined into one."""
    pairs: list[tuple[str, str]] = []
    cookies: list[str] = []
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie":
            cookies.append(value)
        else:
            pairs.append((name, value))
    if cookies:
        pairs.append(("cookie", "; ".join(cookies)))
    headers = Headers.__new__(Headers)
    headers._list = pairs
    return headers


def _environ(
    scope: Scope, root_path: str, path: str, server: t.Any, scheme: str, client: t.Any, body: t.Any
) -> dict[str, t.Any]:
    version = scope.get("http_version", "1.1")
    environ = _BASE_ENVIRON.copy()
    environ["REQUEST_METHOD"] = scope.get("method", "GET")
    environ["SCRIPT_NAME"] = _wsgi_string(root_path)
    environ["PATH_INFO"] = _wsgi_string(path)
    environ["QUERY_STRING"] = scope["query_string"].decode("latin-1")
    environ["SERVER_NAME"] = server[0]
    environ["SERVER_PORT"] = str(server[1]) if server[1] is not None else "80"
    environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(version) or f"HTTP/{version}"
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body
    environ["asgi.scope"] = scope
    extra = scope.get("tether.environ")
    if extra:
        environ.update(extra)  # WSGI-only keys a test client passes
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    keys = _HEADER_KEYS
    for raw_name, raw_value in scope["headers"]:
        key = keys.get(raw_name) or _header_key(raw_name)
        value = raw_value.decode("latin-1")
        if key in environ:
            value = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ','}{value}"
        environ[key] = value
    return environ
