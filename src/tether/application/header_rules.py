"""What a response header must be to go on the wire: a name that is an RFC 9110
token, a value of visible latin-1 characters, spaces and tabs (no CR, LF, NUL
or other control character).

Werkzeug refuses CR and LF in a value when it is set, but not a NUL, a
character latin-1 cannot encode, or a bad name; servers then differ (uvicorn
drops the connection with no response, gunicorn answers its own 500). tether
checks every response before it is sent, so a bad header is the app's error,
a logged 500, on every server and both protocols.
"""

from __future__ import annotations

import re
import typing as t

__all__ = ["InvalidResponseHeader", "header_problem"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_GOOD_NAMES: set[str] = set()
#: Values already found good: most responses repeat the same few
#: (``text/html; charset=utf-8``, small lengths), and a set lookup is cheaper
#: than the regular expression (measured with bench/asgi_bench.py).
_GOOD_VALUES: set[str] = set()


class InvalidResponseHeader(ValueError):
    """A response header that is not valid HTTP."""


def header_problem(headers: t.Iterable[tuple[str, str]]) -> str | None:
    """Why ``headers`` cannot be sent, or ``None`` when they all can."""
    good = _GOOD_NAMES
    good_values = _GOOD_VALUES
    for name, value in headers:
        if name not in good:
            if type(name) is not str or _TOKEN.fullmatch(name) is None:
                return f"The response header name {name!r} is not an HTTP token."
            if len(good) < 512:
                good.add(name)
        if type(value) is str and value in good_values:
            continue
        if type(value) is not str or _FIELD_VALUE.fullmatch(value) is None:
            return (
                f"The value of response header {name!r} ({value!r}) has a control character (CR, LF, NUL, ...) "
                "or a character latin-1 cannot encode."
            )
        if len(good_values) < 1024 and len(value) < 128:
            good_values.add(value)
    return None
