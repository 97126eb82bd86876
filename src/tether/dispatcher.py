"""Several apps in one process: ``DispatcherMiddleware(app, {"/backend": backend})``.

Werkzeug's signature, for WSGI and ASGI alike. A request whose path starts
with a mount prefix goes to that app, with the prefix moved into its root path
(``SCRIPT_NAME``), so ``current_app`` is the app that serves it and its
``url_for`` includes the prefix. Under ASGI, HTTP and WebSocket scopes are
dispatched the same way, and the lifespan reaches every app.
"""

from __future__ import annotations

import asyncio
import typing as t

from werkzeug.middleware.dispatcher import DispatcherMiddleware as _WSGIDispatcher

from .serving.entry import DualCall, install_protocol_entry

__all__ = ["DispatcherMiddleware"]

Message = dict[str, t.Any]


class DispatcherMiddleware(DualCall):
    """Route requests to mounted apps by path prefix; see the module docstring."""

    def __init__(self, app: t.Any, mounts: dict[str, t.Any] | None = None) -> None:
        self.app = app
        self.mounts = dict(mounts or {})
        self._wsgi = _WSGIDispatcher(app, self.mounts)
        self._prefixes = sorted(self.mounts, key=len, reverse=True)
        install_protocol_entry(self)  # served as ASGI 3 too

    def wsgi_app(self, environ: dict[str, t.Any], start_response: t.Any) -> t.Iterable[bytes]:
        return self._wsgi(environ, start_response)

    def asgi_app(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> t.Awaitable[None]:
        if scope["type"] == "lifespan":
            return self._lifespan(scope, receive, send)
        root_path = scope.get("root_path", "")
        path = scope["path"]
        relative = path[len(root_path):] if path.startswith(root_path) else path
        for prefix in self._prefixes:
            if relative == prefix or relative.startswith(prefix.rstrip("/") + "/"):
                return self.mounts[prefix]({**scope, "root_path": root_path + prefix.rstrip("/")}, receive, send)
        return self.app(scope, receive, send)

    async def _lifespan(self, scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
        """Run every app's lifespan; report to the server once all have answered."""
        apps = [self.app, *self.mounts.values()]
        inboxes: list[asyncio.Queue[Message]] = [asyncio.Queue() for _ in apps]
        replies: asyncio.Queue[Message] = asyncio.Queue()
        tasks = [asyncio.ensure_future(app(scope, inbox.get, replies.put)) for app, inbox in zip(apps, inboxes, strict=True)]
        try:
            while True:
                message = await receive()
                for inbox in inboxes:
                    inbox.put_nowait(message)
                answers = [await replies.get() for _ in apps]
                failures = [a.get("message", "") for a in answers if a["type"].endswith(".failed")]
                if failures:
                    await send({"type": f"{message['type']}.failed", "message": "; ".join(failures)})
                    return
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
