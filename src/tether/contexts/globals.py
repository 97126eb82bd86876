"""The context proxies (``current_app``, ``g``, ``request``, ``session``) and the
errors raised when one is used where its context is not current.

The error names the proxy, tells which of the usual situations this is (no
context at all, a thread or task started without it, a request that already
ended) and gives the fix for that situation.
"""

from __future__ import annotations

import sys
import threading
import typing as t

from ..locals import LocalProxy
from .ctx import AppContext, RequestContext, _cv_app, _cv_ended, _cv_request, _cv_websocket

__all__ = ["ContextError", "app_ctx", "current_app", "g", "request", "request_ctx", "session", "websocket"]


class ContextError(RuntimeError):
    """A context proxy was used where its context is not current.

    ``proxy`` is the proxy's name, ``situation`` one of ``"no-context"``,
    ``"thread"``, ``"task"`` or ``"ended"``.
    """

    def __init__(self, message: str, proxy: str, situation: str) -> None:
        super().__init__(message)
        self.proxy = proxy
        self.situation = situation


def _current_task_name() -> str | None:
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return None
    return task.get_name() if task is not None else None


_CARRY = (
    "Contexts are local to a thread or task and are not inherited by a plain "
    "threading.Thread or executor job. Start the work with `app.spawn(fn)`, which "
    "gives it an app context and a copy of the request; or decorate the function "
    "you start with `@copy_current_request_context`; or open a context inside it "
    "with `with app.app_context():`."
)


def _situation_error(proxy: str, kind: str) -> ContextError:
    needs = {"app": "application", "request": "request", "websocket": "websocket"}[kind]
    head = f"Working outside of {needs} context: `{proxy}` was used where no {needs} context is current."
    task = _current_task_name()
    thread = threading.current_thread()
    ended = _cv_ended.get(None) if task is None else None
    if kind == "request" and ended is not None:
        return ContextError(
            f"{head} The request context for {ended[0]} {ended[1]} already ended here. Read what you "
            "need from the request while it is current (a view, a hook, or a body the "
            "view returns, which keeps it), or simulate one with "
            "`with app.test_request_context(...):`.",
            proxy,
            "ended",
        )
    if task is not None:
        return ContextError(
            f"{head} This runs in asyncio task {task!r}, which was created without it. "
            "Create the task while the context is current (tasks copy the context they "
            "are created in), or open one inside it with `with app.app_context():`.",
            proxy,
            "task",
        )
    if thread is not threading.main_thread():
        return ContextError(f"{head} This runs in thread {thread.name!r}. {_CARRY}", proxy, "thread")
    if kind == "websocket":
        fix = "Use it in a WebSocket handler (`@app.websocket(rule)`) or a websocket hook."
    elif kind == "app":
        fix = (
            "Code outside a request (a script, a shell, a test) must open one: "
            "`with app.app_context():`."
        )
    else:
        fix = (
            "Use it in a view or a request hook, or simulate a request in scripts and "
            "tests with `with app.test_request_context(...):`."
        )
    return ContextError(f"{head} {fix}", proxy, "no-context")


def _unbound(proxy: str, kind: str) -> t.Callable[[], ContextError]:
    return lambda: _situation_error(proxy, kind)


# Typed loosely here: the layers above read their own attributes through them.
# ``tether`` re-exports them with the application's types, for users.
current_app: t.Any = LocalProxy(_cv_app, "app", unbound_message=_unbound("current_app", "app"))
g: t.Any = LocalProxy(_cv_app, "g", unbound_message=_unbound("g", "app"))
request: t.Any = LocalProxy(_cv_request, "request", unbound_message=_unbound("request", "request"))
session: t.Any = LocalProxy(_cv_request, "session", unbound_message=_unbound("session", "request"))
app_ctx: AppContext = t.cast("AppContext", LocalProxy(_cv_app, unbound_message=_unbound("app_ctx", "app")))
request_ctx: RequestContext[t.Any] = t.cast(
    "RequestContext[t.Any]", LocalProxy(_cv_request, unbound_message=_unbound("request_ctx", "request"))
)
websocket: t.Any = LocalProxy(_cv_websocket, unbound_message=_unbound("websocket", "websocket"))
