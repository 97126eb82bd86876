"""Debug mode under ASGI: an unhandled error is shown in the browser as
Werkzeug's traceback page (without the interactive console, which needs
Werkzeug's WSGI debugger). ``tether run`` wraps the app in it only in debug mode.

A request's error becomes that page inside the app (``DEBUG_PAGE`` in its
environ: ``errors.ErrorHandling``), logged there and finished as every response
is, its ``after_request`` functions included. An error that escapes the app
before its response started (outside a request's pipeline) is shown here, and
still reaches the server's log."""

from __future__ import annotations

import mimetypes
import pkgutil
import typing as t
from os.path import basename
from urllib.parse import parse_qs

from werkzeug.debug.tbtools import DebugTraceback

from ..application.errors import DEBUG_PAGE
from ..typing import ASGIApp, Message, Receive, Scope, Send
from .headers import encode_headers

__all__ = ["DebugTracebacks"]


class DebugTracebacks:
    """ASGI middleware for development only: it shows source code and local
    values to whoever makes the request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.app, name)  # the wrapped app's attributes (its config, its name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = {**scope, "tether.environ": {**(scope.get("tether.environ") or {}), DEBUG_PAGE: True}}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("__debugger__") == ["yes"] and query.get("cmd") == ["resource"]:
            await _send_resource(send, query.get("f", [""])[0])
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as e:
            if not started:
                page = DebugTraceback(e).render_debugger_html(evalex=False, secret="", evalex_trusted=False)
                await _send(send, 500, page.encode(), "text/html; charset=utf-8")
            raise


async def _send_resource(send: Send, filename: str) -> None:
    """The debugger page's CSS, script and images, from Werkzeug's package."""
    name = basename(filename)
    try:
        data = pkgutil.get_data("werkzeug.debug", f"shared/{name}") if name else None
    except OSError:
        data = None
    if data is None:
        await _send(send, 404, b"Not Found", "text/plain; charset=utf-8")
    else:
        await _send(send, 200, data, mimetypes.guess_type(name)[0] or "application/octet-stream")


async def _send(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = encode_headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
