"""The request object of an ASGI HTTP or WebSocket scope.

The scope's headers are read in one pass. The request's WSGI-style
``environ`` is built only when something asks for it (most requests never
do), so ``request.environ`` works under both protocols at no cost to the rest.
"""

from __future__ import annotations

import sys
import typing as t
from urllib.parse import unquote_to_bytes

from werkzeug.datastructures import Headers

from ..application.werkzeug_private import headers_from_list
from ..application.wrappers import Request
from ..typing import Scope
from .asgi_body import RequestBody

__all__ = ["Framing", "ScopeSource", "environ_from_scope", "request_from_scope"]


_HEADER_KEYS: dict[bytes, tuple[str, str]] = {}


def _header_key(raw_name: bytes) -> tuple[str, str]:
    """The environ key of a header name and the name ``request.headers`` gives it
    under WSGI (``b"x-token"`` -> ``HTTP_X_TOKEN``, ``X-Token``), cached: a
    handful of names recur on every request."""
    key = _HEADER_KEYS.get(raw_name)
    if key is None:
        upper = raw_name.decode("latin-1").upper().replace("-", "_")
        environ_key = upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{upper}"
        key = (environ_key, upper.replace("_", "-").title())
        if len(_HEADER_KEYS) < 512:
            _HEADER_KEYS[raw_name] = key
    return key


def _header_fields(raw: t.Iterable[tuple[bytes, bytes]]) -> dict[str, tuple[str, str]]:
    """The headers as a WSGI server puts them in the environ (gunicorn's and
    Werkzeug's rules): environ key -> (name, value). A name holding ``_`` is
    dropped, so that ``X_User`` cannot pass for ``X-User``; repeated headers are
    joined with ``,`` (Cookie with ``; ``), except a repeated Content-Type or
    Content-Length, where the last one counts."""
    fields: dict[str, tuple[str, str]] = {}
    keys = _HEADER_KEYS
    for raw_name, raw_value in raw:
        if b"_" in raw_name:
            continue
        key, name = keys.get(raw_name) or _header_key(raw_name)
        value = raw_value.decode("latin-1")
        if key in fields and key[0] == "H":
            value = f"{fields[key][1]}{'; ' if key == 'HTTP_COOKIE' else ','}{value}"
        fields[key] = (name, value)
    return fields


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


#: How the request body is framed: its declared length, and whether it is
#: chunked (a plain tuple: a named one costs a Python-level call per request).
Framing = tuple[int | None, bool]


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
    source = ScopeSource(scope, root_path, path, server, scheme, client, body, raw_headers, cookies)
    request = request_class.from_source(  # positional: cheaper than keywords on every request
        source,
        scope.get("method", "GET"),
        scheme,
        server,
        root_path,
        path,
        scope["query_string"],
        client[0] if client else None,
        body if isinstance(body, RequestBody) else None,
        scope["type"] == "websocket",
    )
    return request, (length, chunked)


class ScopeSource:
    """A request's scope, read for what the request makes on first use
    (``tether.application.wrappers.RequestSource``)."""

    __slots__ = (
        "_scope", "_root_path", "_path", "_server", "_scheme", "_client", "_body", "_raw_headers", "has_cookie", "_fields",
    )

    #: An ASGI server holds WebSockets.
    websockets = True

    def __init__(
        self,
        scope: Scope,
        root_path: str,
        path: str,
        server: t.Any,
        scheme: str,
        client: t.Any,
        body: t.Any,
        raw_headers: t.Iterable[tuple[bytes, bytes]],
        has_cookie: bool,
    ) -> None:
        self._scope = scope
        self._root_path = root_path
        self._path = path
        self._server = server
        self._scheme = scheme
        self._client = client
        self._body = body
        self._raw_headers = raw_headers
        self.has_cookie = has_cookie
        self._fields: dict[str, tuple[str, str]] | None = None

    def environ(self) -> dict[str, t.Any]:
        return _environ(self._scope, self._root_path, self._path, self._server, self._scheme, self._client, self._body)

    def headers(self) -> Headers:
        return _headers(self._header_fields())

    def header(self, environ_key: str) -> str | None:
        # As the environ gives it (``request.environ.get(key)``), an empty
        # CONTENT_LENGTH included, which is what Werkzeug reads (its
        # ``EnvironHeaders.get`` returns it, though iterating them skips it).
        field = self._header_fields().get(environ_key)
        return field[1] if field is not None else None

    def _header_fields(self) -> dict[str, tuple[str, str]]:
        fields = self._fields
        if fields is None:
            fields = self._fields = _header_fields(self._raw_headers)
        return fields

    def extra(self, key: str) -> t.Any:
        extra = self._scope.get("tether.environ")
        return extra.get(key) if extra else None

    def body_chunks(self) -> t.AsyncIterator[bytes] | None:
        return self._body.chunks() if isinstance(self._body, RequestBody) else None


def environ_from_scope(scope: Scope, body: t.Any) -> tuple[dict[str, t.Any], Framing]:
    """The WSGI environ of an HTTP or WebSocket scope, built whole, with ``body``
    as ``wsgi.input``: what a WSGI server would hand the app (for a wrapped
    WSGI entry, ``tether.serving.wsgi_chain``)."""
    request, framing = request_from_scope(Request, scope, body)
    return request.environ, framing


def _headers(fields: dict[str, tuple[str, str]]) -> Headers:
    """The request's headers, made when first used: what ``request.headers``
    gives under WSGI for the same request (Werkzeug's ``EnvironHeaders`` over
    the environ a WSGI server makes), so that names, order and values are the
    same on every server: ``User-Agent``, not the ``user-agent`` of ASGI."""
    return headers_from_list([(name, value) for key, (name, value) in fields.items() if _is_header(key, value)])


def _is_header(environ_key: str, value: str) -> bool:
    """Whether an environ field is a header (``EnvironHeaders``' rule): an
    empty ``CONTENT_TYPE`` or ``CONTENT_LENGTH`` is none."""
    return bool(value) or environ_key[0] == "H"


def _path_info(scope: Scope, script_name: str, path: str) -> str:
    """``PATH_INFO`` as a WSGI server gives it: the path's bytes as sent, read as
    latin-1. From ``raw_path`` when the path is not ASCII, since the scope's
    ``path`` has bytes that are not UTF-8 replaced already."""
    raw_path = scope.get("raw_path")
    if path.isascii() or not raw_path:
        return _wsgi_string(path)
    full = unquote_to_bytes(raw_path.partition(b"?")[0]).decode("latin-1")
    return full[len(script_name):] if full.startswith(script_name) else _wsgi_string(path)


def _environ(
    scope: Scope, root_path: str, path: str, server: t.Any, scheme: str, client: t.Any, body: t.Any
) -> dict[str, t.Any]:
    version = scope.get("http_version", "1.1")
    environ = _BASE_ENVIRON.copy()
    environ["REQUEST_METHOD"] = scope.get("method", "GET")
    environ["SCRIPT_NAME"] = script_name = _wsgi_string(root_path)
    environ["PATH_INFO"] = _path_info(scope, script_name, path)
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
    for key, (_, value) in _header_fields(scope["headers"]).items():
        environ[key] = value
    return environ
