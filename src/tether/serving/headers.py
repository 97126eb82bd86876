"""Response headers as each protocol wants them, from one ``Response``: the
one place headers are encoded for ASGI (HTTP responses, WebSocket
rejections and accepts, a wrapped WSGI chain's answer, debug pages).

Werkzeug's ``get_wsgi_headers`` copies and rescans the headers of every
response; the common case (a 2xx-5xx response without ``Location``, with a
length or streamed) only needs the list, so that case is converted directly.
"""

from __future__ import annotations

import typing as t

from ..application.werkzeug_private import header_items

if t.TYPE_CHECKING:
    from ..application.wrappers import Request, Response

__all__ = ["asgi_headers", "body_allowed", "encode_headers", "wsgi_headers"]

_NO_BODY_STATUS = frozenset({204, 304})


def body_allowed(method: str, status: int) -> bool:
    """Whether a response to ``method`` with ``status`` may have a body."""
    return method != "HEAD" and status >= 200 and status not in _NO_BODY_STATUS


def wsgi_headers(response: Response, environ: dict[str, t.Any], status: int) -> list[tuple[str, str]]:
    """The response's headers as WSGI wants them."""
    if status >= 200 and status not in _NO_BODY_STATUS and not response.autocorrect_location_header:
        items = header_items(response.headers)
        has_length = False
        for key, _ in items:
            lower = key.lower()
            if lower == "content-length":
                has_length = True
            elif lower in ("location", "content-location"):
                break
        else:
            if has_length or response.is_streamed:
                return items.copy()  # Headers.to_wsgi_list(), without its calls
    return response.get_wsgi_headers(environ).to_wsgi_list()


_NAMES: dict[str, bytes] = {}


def asgi_headers(response: Response, request: Request, status: int) -> list[tuple[bytes, bytes]]:
    """The response's headers as ASGI wants them: lowercase names, latin-1 bytes.
    A plain response (the common case) is converted in one pass, with the
    encoded names cached."""
    if status >= 200 and status not in (204, 304) and not response.autocorrect_location_header:
        headers = []
        has_length = False
        names = _NAMES
        for name, value in response.headers:
            encoded = names.get(name)
            if encoded is None:
                encoded = name.lower().encode("latin-1")
                if len(names) < 512:
                    names[name] = encoded
            if encoded in (b"location", b"content-location"):
                break
            has_length = has_length or encoded == b"content-length"
            headers.append((encoded, value.encode("latin-1")))
        else:
            if has_length or response.is_streamed:
                return headers
    return encode_headers(wsgi_headers(response, request.environ, status))


def encode_headers(pairs: t.Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """``(name, value)`` pairs as ASGI wants them: lowercase latin-1 names
    (cached, as :func:`asgi_headers` caches them), latin-1 values."""
    names = _NAMES
    encoded = []
    for name, value in pairs:
        key = names.get(name)
        if key is None:
            key = name.lower().encode("latin-1")
            if len(names) < 512:
                names[name] = key
        encoded.append((key, value.encode("latin-1")))
    return encoded
