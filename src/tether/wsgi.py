"""The WSGI adapter: environ in, status, headers and body out.

Each request runs in a ``contextvars.Context`` of its own. A streamed body is
returned as a :class:`~tether.propagation.ContextBody` that produces every
chunk, and runs the request's teardown, inside that Context; the server's
thread never has a tether context left current on it.
"""

from __future__ import annotations

import contextvars
import typing as t

from .propagation import ContextBody

if t.TYPE_CHECKING:
    from .application import Application
    from .wrappers import Response

__all__ = ["serve"]

StartResponse = t.Callable[..., t.Any]
_NO_BODY_STATUS = frozenset({204, 304})


def serve(app: Application, environ: dict[str, t.Any], start_response: StartResponse) -> t.Iterable[bytes]:
    """Answer one WSGI request with ``app``."""
    if not app._serving:
        app.start_serving()
    context = contextvars.copy_context()
    return context.run(_serve, app, context, environ, start_response)


def _serve(
    app: Application, context: contextvars.Context, environ: dict[str, t.Any], start_response: StartResponse
) -> t.Iterable[bytes]:
    response, finish = app.handle(app.request_context(environ))
    status = response.status_code
    start_response(response.status, wsgi_headers(response, environ, status))
    if not body_allowed(environ["REQUEST_METHOD"], status):
        if finish is not None:
            finish(None)
            return []
        return _ClosingBody([], response.close) if response._on_close else []
    if finish is not None:
        return ContextBody(context, response.response, finish)
    body = response.response
    if not response.direct_passthrough and not (type(body) is list and len(body) == 1 and type(body[0]) is bytes):
        body = [chunk.encode() if isinstance(chunk, str) else chunk for chunk in body]
    return _ClosingBody(body, response.close) if response._on_close else body


def body_allowed(method: str, status: int) -> bool:
    """Whether a response to ``method`` with ``status`` may have a body."""
    return method != "HEAD" and status >= 200 and status not in _NO_BODY_STATUS


def wsgi_headers(response: Response, environ: dict[str, t.Any], status: int) -> list[tuple[str, str]]:
    """The response's headers as WSGI wants them.

    Werkzeug's ``get_wsgi_headers`` copies and rescans the headers for every
    response (2.2 µs); the common case (a plain 2xx-5xx response without
    ``Location``) only needs the list, so that case skips it.
    """
    headers = response.headers
    if status >= 200 and status not in _NO_BODY_STATUS and not response.autocorrect_location_header:
        has_length = False
        for key, _ in headers:
            lower = key.lower()
            if lower == "content-length":
                has_length = True
            elif lower in ("location", "content-location"):
                break
        else:
            if has_length or response.is_streamed:
                return headers.to_wsgi_list()
    return response.get_wsgi_headers(environ).to_wsgi_list()


class _ClosingBody:
    """A buffered body whose response has ``call_on_close`` callbacks to run."""

    __slots__ = ("_body", "close")

    def __init__(self, body: t.Iterable[bytes], close: t.Callable[[], None]) -> None:
        self._body = body
        self.close = close

    def __iter__(self) -> t.Iterator[bytes]:
        return iter(self._body)
