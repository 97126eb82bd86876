"""Each reach into Werkzeug's private parts (tether.application.werkzeug_private),
checked against the installed Werkzeug: a release that changes one fails here,
by name. .ci/werkzeug-latest runs this module against the newest Werkzeug."""

from __future__ import annotations

import io

import pytest
from werkzeug.datastructures import Headers, MultiDict
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from tether.application import werkzeug_private as private


@pytest.mark.parametrize("path", ["/plain", "/caf\u00e9", "/\u65e5\u672c", "/bad\udcff"])
def test_wsgi_decoded_is_how_werkzeug_decodes_the_path(path: str) -> None:
    raw = path.encode("utf-8", "surrogateescape").decode("latin-1")
    assert private.wsgi_decoded(raw) == Request({"PATH_INFO": raw}).path


def test_headers_from_list_is_a_headers_over_that_list() -> None:
    items = [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    headers = private.headers_from_list(items)
    assert headers == Headers(list(items))
    assert headers.getlist("set-cookie") == ["a=1", "b=2"] and headers["content-type"] == "text/plain"
    assert headers.to_wsgi_list() == items
    headers.add("X-Added", "yes")
    assert items[-1] == ("X-Added", "yes"), "the list given is the headers' storage"


def test_header_items_are_what_iterating_the_headers_gives() -> None:
    items = [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    headers = Headers(items)
    assert private.header_items(headers) == list(headers) == headers.to_wsgi_list() == items
    headers.add("X-Added", "yes")
    assert private.header_items(headers) == list(headers)

    class Lowered(Headers):
        def __iter__(self):  # type: ignore[override]
            return ((key.lower(), value) for key, value in super().__iter__())

    assert private.header_items(Lowered(items)) == [(key.lower(), value) for key, value in items]


def test_fill_multidict_makes_what_the_pairs_make() -> None:
    pairs = [("a", "1"), ("b", "2"), ("a", "3"), ("c", "")]
    filled: MultiDict[str, str] = MultiDict()
    private.fill_multidict(filled, {"a": ["1", "3"], "b": ["2"], "c": [""]})
    assert filled == MultiDict(pairs)
    assert filled["a"] == "1" and filled.getlist("a") == ["1", "3"]
    assert list(filled.items(multi=True)) == list(MultiDict(pairs).items(multi=True))
    assert filled.to_dict() == {"a": "1", "b": "2", "c": ""}


RULES = [
    "/static/path",
    "/user/<name>",
    "/item/<int:id>/edit",
    "/f/<float(signed=True):x>-<path:rest>",
    "/any/<any(a, b, 'c:d'):kind>/<uuid:key>",
    "/x/<string(length=2):code>.json",
]


@pytest.mark.parametrize("source", RULES)
def test_rule_converters_and_rule_variable_agree_with_werkzeug(source: str) -> None:
    rule = Rule(source, endpoint="e")
    Map([rule])
    converters = private.rule_converters(rule)
    assert converters is not None, "Werkzeug no longer keeps a bound rule's converters in _converters"
    names = [m.group(1) for m in private.RULE_VARIABLE.finditer(source)]
    assert names == list(converters) and set(names) == rule.arguments
    for converter in converters.values():
        assert isinstance(converter.regex, str) and callable(converter.to_python)
        assert isinstance(getattr(converter, "part_isolating", True), bool)


def test_set_plain_status_sets_what_werkzeugs_constructor_sets() -> None:
    made = Response(b"body", 201)
    assert set(vars(made)) == {"headers", "response", "direct_passthrough", "_status", "_status_code", "_on_close"}, (
        "Werkzeug's Response constructor sets other fields: tether's fast path in wrappers.Response must follow"
    )
    response = Response.__new__(Response)
    response.response, response.direct_passthrough = [b"body"], False
    items = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "4")]
    private.set_plain_status(response, "201 CREATED", 201, items)
    assert vars(response) == vars(made) | {"headers": Headers(items), "response": [b"body"]}
    assert (response.status, response.status_code) == ("201 CREATED", 201)
    assert response.headers.to_wsgi_list() == items
    closed: list[str] = []
    assert not private.has_close_callbacks(response)
    response.call_on_close(lambda: closed.append("closed"))
    assert private.has_close_callbacks(response)
    response.close()
    assert closed == ["closed"]


def test_a_value_put_in_the_request_caches_is_what_werkzeug_uses() -> None:
    request = Request({"CONTENT_TYPE": "text/html; charset=latin-1", "wsgi.input": io.BytesIO(b"unread")})
    assert request.mimetype == "text/html" and request.__dict__[private.PARSED_CONTENT_TYPE][0] == "text/html"
    request = Request({"CONTENT_TYPE": "text/html", "wsgi.input": io.BytesIO(b"unread")})
    request.__dict__[private.PARSED_CONTENT_TYPE] = ("application/json", {"v": "2"})
    request.__dict__[private.CACHED_DATA] = b"cached"
    assert (request.mimetype, request.mimetype_params) == ("application/json", {"v": "2"})
    assert request.get_data() == b"cached"
