"""One HTTP request as a client sends it, and what a server makes of it: the
WSGI environ as gunicorn and Werkzeug's server build it, the ASGI scope as
uvicorn builds it. The differential suite feeds one to Flask and tether under
WSGI, the other to tether under ASGI, and compares the answers."""

from __future__ import annotations

import dataclasses
import io
import json
import string
import typing as t
from urllib.parse import quote, unquote, unquote_to_bytes, urlencode

from hypothesis import strategies as st

from asgi_harness import exchange
from differential_app import ROUTES
from http_strategies import FORM_PAIRS, HEADER_NAMES, HEADER_VALUE, JSON_VALUES, MULTIPART_PARTS, multipart

#: The server's and the client's addresses, the same for every server.
SERVER = ("127.0.0.1", 80)
CLIENT = ("127.0.0.1", 50000)


@dataclasses.dataclass(frozen=True)
class Wire:
    """A request as it travels: its target's path (percent-encoded ASCII, as
    HTTP/1.1 allows), its query bytes, its header lines in order (names as the
    client spelled them), its body, and how many chunks the body arrives in."""

    method: str
    path: str
    query: bytes
    headers: tuple[tuple[str, str], ...]
    body: bytes
    parts: int = 1
    #: Where the app is mounted (uvicorn's ``--root-path``, WSGI's ``SCRIPT_NAME``).
    root: str = ""


@dataclasses.dataclass
class Answer:
    """What a client gets back: status, header lines (Date left out: it is the clock's), body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def wsgi_environ(wire: Wire) -> dict[str, t.Any]:
    """The environ a WSGI server (gunicorn, Werkzeug's) makes of ``wire``: the
    path unquoted to bytes read as latin-1, header names upper-cased with ``-``
    as ``_``, repeated headers joined with ``,``, names holding ``_`` dropped
    (both servers do, so ``X_User`` cannot pass for ``X-User``)."""
    environ: dict[str, t.Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(wire.body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "REQUEST_METHOD": wire.method,
        "SCRIPT_NAME": wire.root,
        "PATH_INFO": unquote_to_bytes(wire.path).decode("latin-1"),
        "QUERY_STRING": wire.query.decode("latin-1"),
        "REMOTE_ADDR": CLIENT[0],
        "REMOTE_PORT": str(CLIENT[1]),
        "SERVER_NAME": SERVER[0],
        "SERVER_PORT": str(SERVER[1]),
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    for name, value in wire.headers:
        if "_" in name:
            continue
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
            continue
        key = f"HTTP_{key}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def asgi_scope(wire: Wire) -> dict[str, t.Any]:
    """The scope uvicorn makes of ``wire``: header names lowercased bytes, the
    path unquoted as UTF-8 (bad bytes replaced), ``raw_path`` as sent."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": SERVER,
        "client": CLIENT,
        "scheme": "http",
        "method": wire.method,
        "root_path": wire.root,
        "path": wire.root + unquote(wire.path),
        "raw_path": (wire.root + wire.path).encode("ascii"),
        "query_string": wire.query,
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in wire.headers],
        "state": {},
    }


def _answer(status: int, headers: t.Iterable[tuple[str, str]], body: bytes) -> Answer:
    return Answer(status, [(k, v) for k, v in headers if k.lower() != "date"], body)


def through_wsgi(app: t.Any, wire: Wire) -> Answer:
    """``wire`` through ``app``'s WSGI side, by its test client's runner (no
    cookie jar: the request's Cookie header is the client's own)."""
    client = app.test_client(use_cookies=False)
    app_iter, status, headers = client.run_wsgi_app(wsgi_environ(wire), buffered=True)
    return _answer(int(status.split()[0]), headers.to_wsgi_list(), b"".join(app_iter))


def through_asgi(app: t.Any, wire: Wire) -> Answer:
    """``wire`` through ``app``'s ASGI side, its body in ``wire.parts`` chunks."""
    size = max(1, -(-len(wire.body) // wire.parts))
    chunks = [wire.body[i:i + size] for i in range(0, len(wire.body), size)] or [b""]
    sent = exchange(app, asgi_scope(wire), chunks)
    start = sent[0]
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ())]
    body = b"".join(m.get("body", b"") for m in sent[1:] if m["type"] == "http.response.body")
    return _answer(start["status"], headers, body)


def scope_of_test_client(app: t.Any, wire: Wire) -> dict[str, t.Any]:
    """The scope ``app.test_client(asgi=True)`` sends for ``wire``."""
    scopes: list[dict[str, t.Any]] = []

    async def spy(scope: dict[str, t.Any], receive: t.Any, send: t.Any) -> None:
        scopes.append(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    client = app.test_client(asgi=True, use_cookies=False)
    client.transport.app = spy
    client.open(wire.path, f"http://localhost{wire.root}", method=wire.method, query_string=wire.query.decode("ascii"), headers=list(wire.headers), data=wire.body)
    return scopes[0]


# What clients send. HTTP/1.1 carries the target as visible ASCII, so paths and
# queries are percent-encoded here; what they encode is any text or bytes.
PATH_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
PERCENT_BYTES = st.binary(max_size=4).map(lambda b: "".join(f"%{c:02X}" for c in b))
VISIBLE = "".join(c for c in string.printable if c.isprintable() and c not in " #")


@st.composite
def paths(draw: st.DrawFn, routes: t.Sequence[str]) -> str:
    path = draw(st.sampled_from(routes))
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


#: Headers whose values change the answer: ranges, conditions, proxies, encodings.
MEANINGFUL = st.sampled_from([
    ("Range", "bytes=0-4"), ("Range", "bytes=5-"), ("Range", "bytes=-3"), ("Range", "bytes=0-1,3-4"),
    ("Range", "bytes=99999-"), ("If-Range", '"nope"'), ("If-None-Match", "*"), ("If-None-Match", '"x", W/"y"'),
    ("If-Modified-Since", "Sun, 06 Nov 2094 08:49:37 GMT"), ("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ("Accept-Encoding", "gzip, br"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "proxy.test"),
    ("Origin", "http://other.test"), ("Expect", "100-continue"), ("Accept", "application/json"),
    ("Connection", "keep-alive"), ("Authorization", "Basic dTpw"), ("User-Agent", "Mozilla/5.0 (X11; Linux)"),
])


@st.composite
def header_lines(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Header lines as a client writes them: any case, some repeated, values
    stripped of surrounding blanks as every server strips them."""
    lines = [("Host", draw(HOSTS))]
    names = st.one_of(HEADER_NAMES, st.sampled_from(["X-Forwarded-For", "x_forwarded_for", "X-Real-IP", "Accept-Language"]))
    for name, value in draw(st.lists(st.one_of(st.tuples(names, HEADER_VALUE), MEANINGFUL), max_size=5)):
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
def wires(draw: st.DrawFn, routes: t.Sequence[str] = ROUTES) -> Wire:
    method = draw(st.sampled_from([*["GET"] * 4, *["POST"] * 3, "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "PROPFIND"]))
    headers = draw(header_lines())
    content_type, body = draw(payloads())
    if content_type is not None:
        headers.insert(draw(st.integers(0, len(headers))), ("Content-Type", content_type))
    if body or method in ("POST", "PUT", "PATCH"):
        # Chunked: the server takes the framing off (the body is the same), the header stays.
        framing = ("Transfer-Encoding", "chunked") if draw(st.integers(0, 4)) == 0 else ("Content-Length", str(len(body)))
        headers.insert(draw(st.integers(0, len(headers))), framing)
    root = draw(st.sampled_from(["", "", "", "/app", "/mount/x"]))
    return Wire(method, draw(paths(routes)), draw(queries()), tuple(headers), body, draw(st.integers(1, 3)), root)
