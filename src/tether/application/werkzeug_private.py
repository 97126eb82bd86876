"""Every reach into Werkzeug's private parts, in one module.

tether's hot paths skip work Werkzeug's public API would redo (a Headers built
from a ready list, a MultiDict filled whole, a rule's converters read instead
of re-parsed); each of those depends on something Werkzeug may change in any
release. They are here and nowhere else, each with a test in
tests/test_werkzeug_private.py that fails by name when Werkzeug changes it, and
.ci/werkzeug-latest runs those tests against the newest Werkzeug every week,
so that the ``<3.2`` pin in pyproject.toml is lifted on purpose.
"""

from __future__ import annotations

import re
import typing as t

from werkzeug._internal import _wsgi_decoding_dance
from werkzeug.datastructures import Headers, MultiDict

if t.TYPE_CHECKING:
    from werkzeug.routing import BaseConverter, Rule
    from werkzeug.wrappers import Response

__all__ = [
    "CACHED_DATA",
    "PARSED_CONTENT_TYPE",
    "RULE_VARIABLE",
    "fill_multidict",
    "has_close_callbacks",
    "headers_from_list",
    "rule_converters",
    "set_plain_status",
    "wsgi_decoded",
]

#: A variable in a rule string (``<name>``, ``<conv:name>``, ``<conv(args):name>``),
#: group 1 its name: the syntax Werkzeug's own rule parser reads.
RULE_VARIABLE = re.compile(r"<(?:[a-zA-Z_][a-zA-Z0-9_]*(?:\(.*?\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")

#: Where a Werkzeug request caches its parsed ``Content-Type`` (``mimetype``,
#: ``mimetype_params``) and its body (``get_data``): a value set there first is
#: what Werkzeug then uses.
PARSED_CONTENT_TYPE = "_parsed_content_type"
CACHED_DATA = "_cached_data"


def wsgi_decoded(value: str) -> str:
    """A WSGI string (UTF-8 bytes read as latin-1) as text, decoded as
    ``request.path`` decodes it."""
    return _wsgi_decoding_dance(value)


def headers_from_list(items: list[tuple[str, str]]) -> Headers:
    """A ``Headers`` that takes ``items`` as its storage, without the copy and
    checks of its constructor: for lists whose names and values are known good."""
    headers = Headers.__new__(Headers)
    headers._list = items
    return headers


def fill_multidict(target: MultiDict[str, str], values: dict[str, list[str]]) -> None:
    """Fill an empty ``target`` with ``values`` (a list of values per key) in one
    step: the inner form of a ``MultiDict``, a dict of lists."""
    dict.update(target, values)


def rule_converters(rule: Rule) -> dict[str, BaseConverter] | None:
    """The converter of each variable of a rule bound to a map, or ``None`` if
    this Werkzeug no longer keeps them where we read them."""
    return getattr(rule, "_converters", None)


def set_plain_status(response: Response, status_line: str, status_code: int, header_list: list[tuple[str, str]]) -> None:
    """The fields Werkzeug's response constructor sets besides the body, for a
    response built without it (a known status, no close callbacks), its
    ``headers`` a ``Headers`` over ``header_list`` (as :func:`headers_from_list`):
    one call for the fields every plain response sets."""
    headers = Headers.__new__(Headers)
    headers._list = header_list
    response.headers = headers
    response._status = status_line
    response._status_code = status_code
    response._on_close = []


def header_items(headers: Headers) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of ``headers``, to read, not change: a plain
    ``Headers``' own list, without the calls its ``__iter__`` makes (a subclass
    is iterated)."""
    return headers._list if type(headers) is Headers else list(headers)


def has_close_callbacks(response: Response) -> bool:
    """Whether ``call_on_close`` registered anything: a body that has none needs
    no wrapper to run them."""
    return bool(response._on_close)
