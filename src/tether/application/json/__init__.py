"""JSON helpers that use the current app's provider when an app context is current."""

from __future__ import annotations

import json as _json
import typing as t

from ...contexts.ctx import _cv_app
from .provider import JSONProvider, _default

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = ["dumps", "loads", "dump", "load", "jsonify"]


class _JSONApp(t.Protocol):
    @property
    def json(self) -> JSONProvider: ...


def _provider() -> JSONProvider | None:
    """The current app's JSON provider, when an app context is current."""
    ctx = _cv_app.get(None)
    return t.cast(_JSONApp, ctx.app).json if ctx is not None else None


def dumps(obj: t.Any, **kwargs: t.Any) -> str:
    """Serialize with the current app's provider, or with stdlib defaults outside one."""
    provider = _provider()
    if provider is not None:
        return provider.dumps(obj, **kwargs)
    kwargs.setdefault("default", _default)
    return _json.dumps(obj, **kwargs)


def dump(obj: t.Any, fp: t.IO[str], **kwargs: t.Any) -> None:
    fp.write(dumps(obj, **kwargs))


def loads(s: str | bytes, **kwargs: t.Any) -> t.Any:
    provider = _provider()
    if provider is not None:
        return provider.loads(s, **kwargs)
    return _json.loads(s, **kwargs)


def load(fp: t.IO[t.AnyStr], **kwargs: t.Any) -> t.Any:
    return loads(fp.read(), **kwargs)


def jsonify(*args: t.Any, **kwargs: t.Any) -> Response:
    """A JSON response of the arguments (one value, several as a list, or keywords as an object)."""
    provider = _provider()
    if provider is None:
        raise RuntimeError(
            "Working outside of application context: `jsonify` needs the current app "
            "to build a response. Call it in a view, or inside `with app.app_context():`."
        )
    return provider.response(*args, **kwargs)
