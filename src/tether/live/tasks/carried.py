"""What a task message carries from the request that enqueued it: a read-only
copy of the request (on request) and the ``g`` values named in
``CELERY_CARRY_G``, as JSON in the message's headers, never pickle.

Of the request's headers, only those named in ``CELERY_CARRY_HEADERS`` (an
allow-list: the broker is not the place for credentials, and a deny-list
cannot know every token header an app uses); the body's content type is
carried with the body. Not carried: uploaded files (their size is not the task
message's to hold). Pass what a task needs of the rest as arguments.
"""

from __future__ import annotations

import contextlib
import typing as t
from urllib.parse import urlencode

from werkzeug.test import EnvironBuilder

from ...contexts.ctx import AppContext, RequestContext, _cv_app, _cv_request
from ...locals import LocalProxy
from ...typing import ContextApp

__all__ = ["HEADER", "carry", "execution_context", "refuse_proxies"]

#: The task message header that holds what is carried.
HEADER = "tether_carried"
_CONTAINERS = (list, tuple, set, frozenset, dict)


def refuse_proxies(task: str, args: t.Iterable[t.Any] | None, kwargs: t.Mapping[str, t.Any] | None) -> None:
    """A context proxy cannot go into a task message, at any depth of the
    arguments' lists, tuples, sets and dicts: say what to pass instead (the
    serializer would only say it cannot encode it)."""
    pending: list[t.Any] = [*(args or ()), *(kwargs or {}).values()]
    seen: set[int] = set()
    while pending:
        value = pending.pop()
        if isinstance(value, _CONTAINERS) and not issubclass(type(value), LocalProxy):
            if id(value) not in seen:
                seen.add(id(value))
                pending.extend([*value.keys(), *value.values()] if isinstance(value, dict) else value)
        elif issubclass(type(value), LocalProxy):  # type(), not isinstance(): a proxy passes itself off as its object
            raise TypeError(
                f"A context proxy ({value!r}) was passed to task {task!r}. The task runs in another process, "
                "after this request: pass the values it needs (request.get_json(), request.args.to_dict(), "
                "g.user_id, ...), declare the task with carry_request=True to read a copy of the request as "
                "`request` there, or name g values in CELERY_CARRY_G."
            )


def carry(app: ContextApp, task: str, carry_request: bool) -> dict[str, t.Any] | None:
    """What the current contexts give a task message of ``app``, or ``None``."""
    app_ctx = _cv_app.get(None)
    if app_ctx is None or app_ctx.app is not app:
        return None
    carried: dict[str, t.Any] = {}
    names = app.config["CELERY_CARRY_G"]
    if names:
        values = {name: getattr(app_ctx.g, name) for name in names if hasattr(app_ctx.g, name)}
        if values:
            carried["g"] = values
    request_ctx = _cv_request.get(None)
    if carry_request and request_ctx is not None and request_ctx.app is app:
        carried["request"] = _request_copy(app, task, request_ctx.request)
    return carried or None


def _request_copy(app: ContextApp, task: str, request: t.Any) -> dict[str, t.Any]:
    limit = app.config["CELERY_CARRY_MAX_BYTES"]
    content_type = request.mimetype
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        body = urlencode(list(request.form.items(multi=True)))
        content_type = "application/x-www-form-urlencoded"
    else:
        body = request.get_data(as_text=True)
    if len(body) > limit:
        raise ValueError(
            f"The request body ({len(body)} bytes) is over CELERY_CARRY_MAX_BYTES ({limit}) and cannot go into "
            f"task {task!r}'s message: pass what the task needs as arguments, or store it and pass its key."
        )
    return {
        "method": request.method,
        "path": request.path,
        "root_path": request.root_path,
        "query": request.query_string.decode("latin-1"),
        "headers": _carried_headers(app, request),
        "content_type": content_type if body else None,
        "body": body,
        "base_url": request.host_url,
    }


def _carried_headers(app: ContextApp, request: t.Any) -> list[list[str]]:
    """The request's headers named in ``CELERY_CARRY_HEADERS``, as sent."""
    allowed = {name.lower() for name in app.config["CELERY_CARRY_HEADERS"]} - {"content-length", "content-type"}
    return [[k, v] for k, v in request.headers.items() if k.lower() in allowed]


@contextlib.contextmanager
def execution_context(app: ContextApp, carried: t.Mapping[str, t.Any] | None) -> t.Iterator[None]:
    """A fresh context for one execution of a task, popped (torn down) once at
    its end: a request context over the carried copy of the request if there
    is one, else an app context; the carried ``g`` values set on its ``g``."""
    copy = (carried or {}).get("request")
    ctx: AppContext | RequestContext[t.Any]
    if copy is None:
        ctx = AppContext(app)
    else:
        environ = EnvironBuilder(
            path=copy["path"],
            base_url=copy["base_url"].rstrip("/") + copy["root_path"],
            method=copy["method"],
            query_string=copy["query"],
            headers=copy["headers"],
            data=copy["body"].encode(),
            content_type=copy["content_type"],
        ).get_environ()
        request = app.request_class(environ)
        request.match_url_later(app)
        ctx = RequestContext(app, None, request=request)
    with ctx:
        g = _cv_app.get().g
        for name, value in ((carried or {}).get("g") or {}).items():
            setattr(g, name, value)
        yield
