"""The differential suite: one app (tests/differential_app.py) on real Flask
3.1.3, on tether under WSGI and on tether under ASGI gets the same generated
requests; status, headers, body and what the view saw must be the same,
except for the differences listed in :data:`ON_PURPOSE` (and in the README).

``FUZZ_EXAMPLES=5000 pytest tests/test_differential.py`` runs a longer search.
"""

from __future__ import annotations

import json
import os
import re
import string
import typing as t
from urllib.parse import quote, unquote_to_bytes, urlencode

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from differential_app import FLASK, ROUTES, TETHER, build
from differential_wire import Answer, Wire, asgi_scope, scope_of_test_client, through_asgi, through_wsgi
from http_strategies import FORM_PAIRS, HEADER_NAMES, HEADER_VALUE, JSON_VALUES, MULTIPART_PARTS, multipart

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))

APPS = {"flask": build(FLASK), "tether": build(TETHER)}
OVERRIDE_APPS = {"flask": build(FLASK, dumps_override=True), "tether": build(TETHER, dumps_override=True)}


def _json_400_says_why(answer: Answer) -> Answer:
    """A malformed JSON body's 400 says what is wrong (tether) rather than
    Flask's generic sentence outside debug mode: the client can fix its request."""
    if answer.status == 400 and (b"Failed to decode JSON object" in answer.body or b"could not understand" in answer.body):
        answer.body = re.sub(rb"<p>.*</p>", b"<p>(why)</p>", answer.body, flags=re.S)
        answer.headers = [(k, str(len(answer.body)) if k.lower() == "content-length" else v) for k, v in answer.headers]
    return answer


#: Differences kept on purpose: each normalizes both answers, with its reason
#: in its docstring (the README's "differs on purpose" says the same).
ON_PURPOSE: list[t.Callable[[Answer], Answer]] = [_json_400_says_why]


def normalized(answer: Answer) -> dict[str, t.Any]:
    for rule in ON_PURPOSE:
        answer = rule(answer)
    body: t.Any = answer.body
    if any(k.lower() == "content-type" and "json" in v for k, v in answer.headers):
        try:
            body = json.loads(body)
        except ValueError:
            pass
    return {"status": answer.status, "headers": answer.headers, "body": body}


def lowered(answer: dict[str, t.Any]) -> dict[str, t.Any]:
    """ASGI sends header names lowercased: compare the names that way."""
    return {**answer, "headers": [(k.lower(), v) for k, v in answer["headers"]]}


def differences(ours: t.Any, theirs: t.Any, where: str = "") -> list[str]:
    """Where two answers differ, as ``path: ours != theirs`` lines."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [line for key in sorted(set(ours) | set(theirs), key=str)
                for line in differences(ours.get(key, "<absent>"), theirs.get(key, "<absent>"), f"{where}.{key}")]
    if ours != theirs:
        return [f"{where}: {ours!r} != {theirs!r}"]
    return []


def compare(apps: dict[str, t.Any], wire: Wire) -> None:
    flask = normalized(through_wsgi(apps["flask"], wire))
    tether_wsgi = normalized(through_wsgi(apps["tether"], wire))
    assert tether_wsgi == flask, ["tether (WSGI) != Flask", *differences(tether_wsgi, flask)]
    tether_asgi = lowered(normalized(through_asgi(apps["tether"], wire)))
    assert tether_asgi == lowered(flask), ["tether (ASGI) != Flask", *differences(tether_asgi, lowered(flask))]


# What clients send. HTTP/1.1 carries the target as visible ASCII, so paths and
# queries are percent-encoded here; what they encode is any text or bytes.
PATH_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
PERCENT_BYTES = st.binary(max_size=4).map(lambda b: "".join(f"%{c:02X}" for c in b))
VISIBLE = "".join(c for c in string.printable if c.isprintable() and c not in " #")


@st.composite
def paths(draw: st.DrawFn) -> str:
    path = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 3)) == 0:
        path += draw(st.sampled_from(["", "/", "//"])) + quote(draw(PATH_TEXT), safe=draw(st.sampled_from(["/", "/:@!$&'()*+,;=", ""])))
    if draw(st.integers(0, 7)) == 0:
        path += draw(PERCENT_BYTES)
    return path


@st.composite
def queries(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["pairs", "visible", "bytes", "none"]))
    if kind == "pairs":
        return urlencode(draw(FORM_PAIRS), doseq=True).encode()
    if kind == "visible":
        return draw(st.text(VISIBLE, max_size=30)).encode()
    if kind == "bytes":
        return draw(PERCENT_BYTES).encode() + b"=" + draw(PERCENT_BYTES).encode()
    return b""


def odd_case(name: str, pattern: list[bool]) -> str:
    return "".join(c.upper() if pattern[i % len(pattern)] else c for i, c in enumerate(name)) if pattern else name


COOKIES = st.lists(st.tuples(st.text(string.ascii_letters + "_-", min_size=1, max_size=6), st.text(VISIBLE.replace(";", ""), max_size=10)), max_size=4)
HOSTS = st.sampled_from(["localhost", "example.test:8080", "Example.TEST", "[::1]:8000", "127.0.0.1", "xn--bcher-kva.example"])


@st.composite
def header_lines(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Header lines as a client writes them: any case, some repeated, values
    stripped of surrounding blanks as every server strips them."""
    lines = [("Host", draw(HOSTS))]
    names = st.one_of(HEADER_NAMES, st.sampled_from(["X-Forwarded-For", "x_forwarded_for", "X-Real-IP", "Accept-Language"]))
    for name, value in draw(st.lists(st.tuples(names, HEADER_VALUE), max_size=5)):
        if name.lower() in ("cookie", "content-type", "content-length"):
            continue
        lines.append((odd_case(name, draw(st.lists(st.booleans(), max_size=3))), value.strip(" \t")))
        if draw(st.integers(0, 4)) == 0:  # repeated
            lines.append((odd_case(name, draw(st.lists(st.booleans(), max_size=3))), draw(HEADER_VALUE).strip(" \t")))
    if draw(st.booleans()):
        lines.append(("Cookie", "; ".join(f"{k}={v}" for k, v in draw(COOKIES))))
    return lines


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str | None, bytes]:
    """A content type and a body: matching, broken, mismatched or absent."""
    kind = draw(st.sampled_from(["none", "form", "multipart", "json", "broken-json", "mismatched", "empty-typed"]))
    if kind == "form":
        return "application/x-www-form-urlencoded", urlencode(draw(FORM_PAIRS)).encode()
    if kind == "multipart":
        boundary = draw(st.sampled_from(["fuzz", "----WebKitFormBoundary7MA4YWxkTrZu0gW"]))
        return f"multipart/form-data; boundary={boundary}", multipart(draw(MULTIPART_PARTS), boundary, draw(st.booleans()))
    if kind == "json":
        return draw(st.sampled_from(["application/json", "application/vnd.api+json", "application/json; charset=utf-8"])), json.dumps(draw(JSON_VALUES)).encode()
    if kind == "broken-json":
        return "application/json", draw(st.sampled_from([b"{", b"[1,", b"{'a': 1}", b"\xff\xfe", b"nul", b""]))
    if kind == "mismatched":
        content_type = draw(st.sampled_from(["text/plain", "application/json", "multipart/form-data", "application/x-www-form-urlencoded", "image/png"]))
        return content_type, draw(st.binary(max_size=80))
    if kind == "empty-typed":
        return draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded"])), b""
    return None, b""


@st.composite
def wires(draw: st.DrawFn) -> Wire:
    method = draw(st.sampled_from([*["GET"] * 4, *["POST"] * 3, "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "PROPFIND"]))
    headers = draw(header_lines())
    content_type, body = draw(payloads())
    if content_type is not None:
        headers.insert(draw(st.integers(0, len(headers))), ("Content-Type", content_type))
    if body or method in ("POST", "PUT", "PATCH"):
        # Chunked: the server takes the framing off (the body is the same), the header stays.
        framing = ("Transfer-Encoding", "chunked") if draw(st.integers(0, 4)) == 0 else ("Content-Length", str(len(body)))
        headers.insert(draw(st.integers(0, len(headers))), framing)
    return Wire(method, draw(paths()), draw(queries()), tuple(headers), body, draw(st.integers(1, 3)))


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(wire=wires())
@example(wire=Wire("GET", "/see", b"a=1&a=2", (("Host", "localhost"), ("User-Agent", "ua"), ("x-One", "1")), b""))
@example(wire=Wire("POST", "/see", b"", (("Host", "h"), ("Content-Type", "application/json"), ("Content-Length", "1")), b"{"))
@example(wire=Wire("POST", "/json", b"", (("Host", "h"), ("Content-Type", "application/json"), ("Content-Length", "1")), b"{"))
def test_flask_and_tether_answer_alike(wire: Wire) -> None:
    compare(APPS, wire)


@SETTINGS
@given(wire=wires().filter(lambda w: w.path.split("?")[0] in ("/dict", "/list", "/jsonify", "/jsonify-args", "/see", "/tuple-all", "/missing", "/handled")))
def test_a_json_provider_that_overrides_dumps_makes_every_json_response(wire: Wire) -> None:
    compare(OVERRIDE_APPS, wire)


@pytest.mark.parametrize("path", ["/dict", "/jsonify", "/missing", "/handled", "/tuple-all"])
def test_the_dumps_override_is_used_everywhere(path: str) -> None:
    wire = Wire("GET", path, b"", (("Host", "localhost"),), b"")
    for answer in (through_wsgi(OVERRIDE_APPS["tether"], wire), through_asgi(OVERRIDE_APPS["tether"], wire)):
        assert json.loads(answer.body)["via"] == "override", answer


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None)
@given(wire=wires().filter(lambda w: not any("_" in name for name, _ in w.headers)))
def test_the_asgi_test_client_builds_the_scope_uvicorn_builds(wire: Wire) -> None:
    try:  # Werkzeug's client can only send a path whose bytes are UTF-8
        unquote_to_bytes(wire.path).decode()
    except UnicodeDecodeError:
        assume(False)
    scope = scope_of_test_client(APPS["tether"], wire)
    expected = asgi_scope(wire)
    for key in ("type", "http_version", "method", "scheme", "path", "root_path", "query_string"):
        assert scope[key] == expected[key], key
    # The same bytes, percent-encoded (which characters were escaped is lost in the environ).
    assert scope["raw_path"].isascii() and unquote_to_bytes(scope["raw_path"]) == unquote_to_bytes(expected["raw_path"])
    for key in ("server", "client"):
        assert isinstance(scope[key], tuple) and [type(v) for v in scope[key]] == [str, int], key
    assert all(isinstance(n, bytes) and n == n.lower() for n, _ in scope["headers"])
    sent = [(n, v) for n, v in expected["headers"] if n not in (b"host", b"content-length", b"content-type")]
    assume(len({n for n, _ in sent}) == len(sent))  # the test client joins repeated headers
    assert set(sent) <= set(scope["headers"])
