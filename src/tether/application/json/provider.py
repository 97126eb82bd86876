"""The app's JSON provider: how ``jsonify``, dict/list returns and ``request.json``
encode and decode, configurable per app through ``app.json``."""

from __future__ import annotations

import dataclasses
import decimal
import json
import typing as t
import uuid
import weakref
from datetime import date

from werkzeug.http import http_date

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

__all__ = ["DefaultJSONProvider", "JSONApp", "JSONProvider"]


class JSONApp(t.Protocol):
    """What a JSON provider needs of an application."""

    @property
    def debug(self) -> bool: ...

    @property
    def response_class(self) -> type[Response]: ...


class JSONProvider:
    """The interface: ``dumps``, ``loads`` and ``response``."""

    def __init__(self, app: JSONApp) -> None:
        self._app: JSONApp = weakref.proxy(app)  # the app owns its provider: no cycle back to it

    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        raise NotImplementedError(f"{type(self).__name__} must implement 'dumps'.")

    def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
        raise NotImplementedError(f"{type(self).__name__} must implement 'loads'.")

    def dump(self, obj: t.Any, fp: t.IO[str], **kwargs: t.Any) -> None:
        fp.write(self.dumps(obj, **kwargs))

    def load(self, fp: t.IO[t.AnyStr], **kwargs: t.Any) -> t.Any:
        return self.loads(fp.read(), **kwargs)

    def _prepare_response_obj(self, args: tuple[t.Any, ...], kwargs: dict[str, t.Any]) -> t.Any:
        if args and kwargs:
            raise TypeError("app.json.response() takes either args or kwargs, not both")
        if not args and not kwargs:
            return None
        if len(args) == 1:
            return args[0]
        return args or kwargs

    def response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self.dumps(obj), mimetype="application/json")


def _default(o: t.Any) -> t.Any:
    if isinstance(o, date):
        return http_date(o)
    if isinstance(o, (decimal.Decimal, uuid.UUID)):
        return str(o)
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if hasattr(o, "__html__"):
        return str(o.__html__())
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


class DefaultJSONProvider(JSONProvider):
    """JSON with the stdlib ``json``; dates, decimals, UUIDs, dataclasses and markup
    are serialized; keys are sorted; output is compact unless the app is in debug."""

    default: t.Callable[[t.Any], t.Any] = staticmethod(_default)
    ensure_ascii = True
    sort_keys = True
    compact: bool | None = None
    mimetype = "application/json"
    #: The compact encoder and the settings it was made with.
    _encoder: tuple[tuple[t.Any, ...], json.JSONEncoder] | None = None

    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return json.dumps(obj, **kwargs)

    def _compact_encoder(self) -> json.JSONEncoder:
        """The encoder for compact responses, kept while the settings stay the same:
        ``json.dumps`` with options builds a new encoder per call."""
        key = (self.default, self.ensure_ascii, self.sort_keys)
        cached = self._encoder
        if cached is None or cached[0] != key:
            encoder = json.JSONEncoder(
                default=self.default, ensure_ascii=self.ensure_ascii, sort_keys=self.sort_keys, separators=(",", ":")
            )
            cached = self._encoder = (key, encoder)
        return cached[1]

    def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
        """Decode JSON; nesting deeper than Python's recursion allows is a
        ``ValueError`` like any other invalid document (a 400, not a 500)."""
        try:
            return json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError("The JSON document is nested too deeply.") from None

    def response(self, *args: t.Any, **kwargs: t.Any) -> Response:
        obj = args[0] if len(args) == 1 and not kwargs else self._prepare_response_obj(args, kwargs)
        if self.compact is False or (self.compact is None and self._app.debug):
            body = self.dumps(obj, indent=2)
        elif type(self).dumps is not DefaultJSONProvider.dumps:  # an override sees every document, as in Flask
            body = self.dumps(obj, separators=(",", ":"))
        else:
            body = self._compact_encoder().encode(obj)
        return self._app.response_class(f"{body}\n", mimetype=self.mimetype)
