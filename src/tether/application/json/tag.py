"""A compact tagged JSON format for session data: it round-trips the types a
session commonly holds (tuples, bytes, markup, UUIDs, datetimes) that plain
JSON cannot. The wire format is the one Flask uses, so sessions survive a move
between the two."""

from __future__ import annotations

import typing as t
from base64 import b64decode, b64encode
from datetime import datetime
from uuid import UUID

from markupsafe import Markup
from werkzeug.http import http_date, parse_date

from ..json import dumps, loads

__all__ = ["TaggedJSONSerializer"]


class TaggedJSONSerializer:
    """Serializes values to JSON with ``{" tag": value}`` wrappers for non-JSON types."""

    def tag(self, value: t.Any) -> t.Any:
        if isinstance(value, dict):
            if len(value) == 1:
                key = next(iter(value))
                if key in _UNTAG:
                    return {" di": {f"{key}__": self.tag(value[key])}}
            return {k: self.tag(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return {" t": [self.tag(x) for x in value]}
        if isinstance(value, bytes):
            return {" b": b64encode(value).decode("ascii")}
        if callable(getattr(value, "__html__", None)):
            return {" m": str(value.__html__())}
        if isinstance(value, list):
            return [self.tag(x) for x in value]
        if isinstance(value, UUID):
            return {" u": value.hex}
        if isinstance(value, datetime):
            return {" d": http_date(value)}
        return value

    def untag(self, value: dict[str, t.Any]) -> t.Any:
        if len(value) != 1:
            return value
        key = next(iter(value))
        if key not in _UNTAG:
            return value
        return _UNTAG[key](value[key])

    def dumps(self, value: t.Any) -> str:
        return dumps(self.tag(value), separators=(",", ":"))

    def loads(self, value: str | bytes) -> t.Any:
        return loads(value, object_hook=self.untag)


_UNTAG: dict[str, t.Callable[[t.Any], t.Any]] = {
    " di": lambda v: {next(iter(v))[:-2]: next(iter(v.values()))},
    " t": tuple,
    " b": lambda v: b64decode(v),
    " m": Markup,
    " u": UUID,
    " d": parse_date,
}
