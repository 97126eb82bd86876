"""``forward(target)``: the response of another route of the same app, made
inside the current request (an internal redirect).

The target is answered in a request context of its own, pushed on top of the
current one: in it ``request.path``, ``view_args`` and ``endpoint`` are the
target's, its hooks and teardown run, and when it returns the outer request is
current again. The outer method, body (form and files included) and headers
are carried unless overridden.
"""

from __future__ import annotations

import asyncio
import typing as t
from urllib.parse import urlsplit

from ..application.pipeline import Application
from ..application.wrappers import Request, Response
from ..contexts.ctx import RequestContext, _cv_request
from ..contexts.steps import Steps, run, run_async
from .snapshot import RequestSnapshot

__all__ = ["forward", "forward_async"]

_DEPTH = "tether.forward_depth"


def _forward_steps(
    target: str, method: str | None, headers: t.Mapping[str, str] | None, values: t.Any
) -> Steps[tuple[Response, t.Any]]:
    """The target's whole request, in a context pushed on the current one."""
    outer_ctx = _cv_request.get(None)
    if outer_ctx is None:
        raise RuntimeError("'forward' answers with another route inside a request: call it in a view or a hook.")
    app = t.cast(Application, outer_ctx.app)
    outer: Request = outer_ctx.request
    depth = outer.environ.get(_DEPTH, 0) + 1
    limit = app.config["FORWARD_MAX_DEPTH"]
    if depth > limit:
        raise RuntimeError(
            f"Forwarding loop: {outer.method} {outer.path} was reached after {limit} forwards "
            f"(FORWARD_MAX_DEPTH). Check the targets of tether.forward()."
        )
    if target.startswith("/"):
        url = target
    else:
        url = app.url_for(target, **values)
        if outer.script_root and url.startswith(outer.script_root):
            url = url[len(outer.script_root):]
    parts = urlsplit(url)
    snapshot = RequestSnapshot(outer)
    environ = dict(snapshot.environ)
    environ["PATH_INFO"] = parts.path.encode().decode("latin-1")
    environ["QUERY_STRING"] = parts.query
    environ[_DEPTH] = depth
    environ.pop("asgi.scope", None)
    if method is not None:
        environ["REQUEST_METHOD"] = method.upper()
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    session = outer_ctx._session if outer_ctx.session_opened else None
    ctx = RequestContext(app, None, request=snapshot.request(app, environ), session=session)
    return app.answer_steps(ctx, keep_streams=False)


def forward(target: str, *, method: str | None = None, headers: t.Mapping[str, str] | None = None, **values: t.Any) -> Response:
    """The response of ``target`` (an endpoint with URL ``values``, or a path)
    for the current request; in an async view, ``await forward_async(...)``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run(_forward_steps(target, method, headers, values))[0]
    raise RuntimeError("In an async view, use 'await tether.forward_async(...)'.")


async def forward_async(
    target: str, *, method: str | None = None, headers: t.Mapping[str, str] | None = None, **values: t.Any
) -> Response:
    """:func:`forward` from an async view."""
    return (await run_async(_forward_steps(target, method, headers, values)))[0]
