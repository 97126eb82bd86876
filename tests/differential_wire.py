"""One HTTP request as a client sends it, and what a server makes of it: the
WSGI environ as gunicorn and Werkzeug's server build it, the ASGI scope as
uvicorn builds it. The differential suite feeds one to Flask and tether under
WSGI, the other to tether under ASGI, and compares the answers."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import typing as t
from urllib.parse import unquote, unquote_to_bytes

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
        "SCRIPT_NAME": "",
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
        "root_path": "",
        "path": unquote(wire.path),
        "raw_path": wire.path.encode("ascii"),
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
    sent: list[dict[str, t.Any]] = []

    async def main() -> None:
        gone = asyncio.Event()

        async def receive() -> dict[str, t.Any]:
            if chunks:
                return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, t.Any]) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                gone.set()

        await asyncio.wait_for(app(asgi_scope(wire), receive, send), 30)

    asyncio.run(main())
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
    client.open(wire.path, method=wire.method, query_string=wire.query.decode("ascii"), headers=list(wire.headers), data=wire.body)
    return scopes[0]
