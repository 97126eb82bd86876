"""Property-based fuzzing (Hypothesis) of what a client controls: method, path
bytes, query, headers, content type and body, through the WSGI and the ASGI
adapter. No input gets a 5xx from tether, and no exception escapes.

``FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py`` runs a longer search.
"""

from __future__ import annotations

import io
import logging
import os
import typing as t

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tether
from asgi_harness import exchange
from http_strategies import CONTENT_TYPES, HEADER_NAMES, HEADER_VALUE, METHODS, bodies
from tether import request, session

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))


def make_app() -> tether.Tether:
    app = tether.Tether("fuzz")
    app.config.update(SECRET_KEY="fuzz", MAX_CONTENT_LENGTH=20_000, MAX_FORM_MEMORY_SIZE=5_000, MAX_FORM_PARTS=20)

    @app.route("/", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def index() -> str:
        return "ok"

    @app.post("/json")
    def json_view() -> dict[str, t.Any]:
        return {"got": request.get_json()}

    @app.post("/async-json")
    async def async_json() -> dict[str, t.Any]:
        return {"got": request.json}

    @app.post("/form")
    def form() -> dict[str, t.Any]:
        return {"form": request.form.to_dict(flat=False), "files": sorted(request.files)}

    @app.route("/args")
    def args() -> dict[str, t.Any]:
        return {"args": request.args.to_dict(flat=False), "headers": dict(request.headers)}

    @app.route("/user/<int:user_id>")
    def user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    @app.route("/files/<path:name>")
    def files(name: str) -> str:
        return name

    @app.route("/session", methods=["GET", "POST"])
    def session_view() -> str:
        session["seen"] = session.get("seen", 0) + 1
        return str(request.cookies.to_dict())

    @app.post("/stream")
    def stream() -> tether.Response:
        def generate() -> t.Iterator[bytes]:
            yield request.get_data()[:100]
            yield b"."

        return tether.Response(generate())

    @app.route("/url")
    def url() -> str:
        return tether.url_for("files", name=request.args.get("name", "x"), _external=True)

    return app


APP = make_app()
ERRORS: list[logging.LogRecord] = []


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        ERRORS.append(record)


APP.logger.addHandler(_Collect(logging.ERROR))
APP.logger.propagate = False

PREFIXES = ["/", "/json", "/async-json", "/form", "/args", "/user/", "/files/", "/session", "/stream", "/url", "/missing"]


@st.composite
def requests_(draw: st.DrawFn) -> dict[str, t.Any]:
    path = draw(st.sampled_from(PREFIXES)) + draw(st.text(max_size=20))
    headers = draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUE), max_size=6))
    content_type = draw(CONTENT_TYPES)
    if content_type is not None:
        headers.append(("content-type", content_type))
    return {
        "method": draw(METHODS),
        "path": path,
        "query": draw(st.binary(max_size=80)),
        "headers": headers,
        "body": draw(bodies()),
        "parts": draw(st.integers(min_value=1, max_value=3)),
    }


def through_wsgi(case: dict[str, t.Any]) -> int:
    body = case["body"]
    environ: dict[str, t.Any] = {
        "REQUEST_METHOD": case["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": case["path"].encode("utf-8", "surrogatepass").decode("latin-1"),
        "QUERY_STRING": case["query"].decode("latin-1"),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in case["headers"]:
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    environ["CONTENT_LENGTH"] = str(len(body))
    statuses: list[str] = []
    result = APP.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return int(statuses[0].split()[0])


def through_asgi(case: dict[str, t.Any]) -> int:
    body = case["body"]
    size = max(1, len(body) // case["parts"])
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in case["headers"]]
    headers = [(n, v) for n, v in headers if n != b"content-length"] + [(b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": case["method"],
        "scheme": "http", "path": case["path"], "raw_path": case["path"].encode("utf-8", "surrogatepass"),
        "root_path": "", "query_string": case["query"], "headers": [(b"host", b"localhost"), *headers],
        "server": ("localhost", 80), "client": ("127.0.0.1", 5000),
    }
    sent = exchange(APP, scope, chunks)
    return int(sent[0]["status"])


@pytest.mark.parametrize("adapter", [through_wsgi, through_asgi], ids=["wsgi", "asgi"])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=requests_())
def test_no_input_gets_a_5xx(adapter: t.Callable[[dict[str, t.Any]], int], case: dict[str, t.Any]) -> None:
    ERRORS.clear()
    status = adapter(case)
    assert status < 500, f"{status} for {case!r}"
    assert ERRORS == [], [record.getMessage() for record in ERRORS]
