"""tether's hand-written ``Request`` and ``Response`` constructors against
Werkzeug's: the same fields from the same WSGI environ, the same status,
headers and body from the same arguments, whatever they hold."""

from __future__ import annotations

import typing as t

from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as _WerkzeugResponse

from tether.application.wrappers import Request, Response

FIELDS = ("method", "scheme", "server", "root_path", "path", "query_string", "remote_addr", "url", "host", "args")

latin1 = st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=20)
optional = st.one_of(st.none(), latin1)


@st.composite
def environs(draw: st.DrawFn) -> dict[str, t.Any]:
    environ: dict[str, t.Any] = {
        "wsgi.url_scheme": draw(st.sampled_from(["http", "https"])),
        "HTTP_HOST": draw(st.sampled_from(["example.test", "example.test:8080", "[::1]:80"])),
    }
    for key in ("REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REMOTE_ADDR"):
        value = draw(optional)
        if value is not None:
            environ[key] = value
    if draw(st.booleans()):
        environ["SERVER_PORT"] = draw(st.sampled_from(["80", "443", "8080", "x", ""]))
    return environ


@settings(max_examples=300)
@given(environs())
def test_the_fields_are_werkzeugs(environ: dict[str, t.Any]) -> None:
    ours, theirs = Request(dict(environ)), WerkzeugRequest(dict(environ))
    for field in FIELDS:
        try:
            expected: t.Any = getattr(theirs, field)
        except Exception as e:  # noqa: BLE001 - the same error is what must match
            expected = type(e)
        if field == "args" and expected is UnicodeDecodeError:
            continue  # a query that is not UTF-8: Werkzeug fails, tether reads replacement characters
        try:
            actual: t.Any = getattr(ours, field)
        except Exception as e:  # noqa: BLE001
            actual = type(e)
        assert actual == expected, field
    assert dict(ours.headers) == dict(theirs.headers)
    assert ours.environ["werkzeug.request"] is ours


def test_a_shallow_request_leaves_the_environ_alone() -> None:
    environ = {"REQUEST_METHOD": "get", "PATH_INFO": "/caf\xc3\xa9", "SCRIPT_NAME": "/app/"}
    request = Request(environ, shallow=True)
    assert "werkzeug.request" not in environ
    assert (request.method, request.path, request.root_path, request.shallow) == ("GET", "/café", "/app", True)


class WerkzeugResponse(_WerkzeugResponse):
    default_mimetype = "text/html"  # tether's default, as Flask's


header_names = st.sampled_from(["Content-Type", "content-type", "X-Trace", "Cache-Control", "Content-Length", "X-Ünï"])
header_values = st.one_of(st.sampled_from(["text/plain; charset=utf-8", "no-store", "a\nb", "7"]), st.integers(0, 9))


@settings(max_examples=300)
@given(
    body=st.one_of(st.text(max_size=10), st.binary(max_size=10)),
    status=st.one_of(st.none(), st.sampled_from([200, 201, 404, 299, 999])),
    headers=st.one_of(st.none(), st.dictionaries(header_names, header_values, max_size=3)),
    mimetype=st.one_of(st.none(), st.sampled_from(["text/plain", "application/json"])),
)
def test_a_response_is_built_as_werkzeug_builds_it(
    body: str | bytes, status: int | None, headers: dict[str, t.Any] | None, mimetype: str | None
) -> None:
    def build(cls: type[t.Any]) -> t.Any:
        try:
            response = cls(body, status, headers, mimetype)
        except Exception as e:  # noqa: BLE001 - the same error is what must match
            return type(e)
        return response.status, response.headers.to_wsgi_list(), response.get_data()

    assert build(Response) == build(WerkzeugResponse)
