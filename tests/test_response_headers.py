"""Whatever header tether sends is valid HTTP, or the response is a logged 500:
the same on WSGI and ASGI, through real servers, and for every header the
encoders can be given (Hypothesis, against h11's validator)."""

from __future__ import annotations

import sys
import time
import typing as t
from pathlib import Path

import h11
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

import tether
from tether.application.header_rules import header_problem
from tether.serving.headers import asgi_headers, wsgi_headers

SERVERS = Path(__file__).parent / "servers"
PYTHON = sys.executable
COMMANDS = {
    "gunicorn": [PYTHON, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "header_app:app"],
    "uvicorn": [PYTHON, "-m", "uvicorn", "--port", "{port}", "header_app:app"],
    "uvicorn-h11": [PYTHON, "-m", "uvicorn", "--http", "h11", "--port", "{port}", "header_app:app"],
}
BAD = [
    ("X-Bad\r\nInjected", "v"),
    ("X-Bad\nName", "v"),
    ("X Space", "v"),
    ("X:Colon", "v"),
    ("", "v"),
    ("X-Nul", "a\x00b"),
    ("X-Ctl", "a\x01b"),
    ("X-Del", "a\x7fb"),
    ("X-Wide", "\u20ac"),
]


TCHAR = frozenset("!#$%&'*+-.^_`|~" + "0123456789" + "abcdefghijklmnopqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def rfc9110_valid(name: str, value: str) -> bool:
    """RFC 9110's grammar: a token for the name; visible ASCII, obs-text, SP and HTAB for the value."""
    return bool(name) and all(c in TCHAR for c in name) and all(
        c in " \t" or 0x21 <= ord(c) <= 0x7E or 0x80 <= ord(c) <= 0xFF for c in value
    )


def h11_accepts(name: bytes, value: bytes) -> bool:
    """h11's own check of an outgoing header (the surrounding spaces a recipient drops aside)."""
    try:
        h11.Response(status_code=200, headers=[(name, value.strip(b" \t"))])
    except h11.LocalProtocolError:
        return False
    return True


def wait_for_log(path: Path, text: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = path.read_text() if path.exists() else ""
        if text in logged:
            return logged
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged: {path.read_text() if path.exists() else ''!r}")


@pytest.mark.parametrize("server", list(COMMANDS))
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_bad_header_is_a_logged_500_on_real_servers(server: str, stream: bool, serve: t.Any, tmp_path: Path) -> None:
    errors = tmp_path / "errors.log"
    port = serve(COMMANDS[server], cwd=SERVERS, env={"ERRORS_FILE": str(errors)})
    for name, value in BAD:
        params = {"name": name, "value": value, **({"stream": "1"} if stream else {})}
        response = requests.get(f"http://127.0.0.1:{port}/", params=params, timeout=10)
        assert response.status_code == 500, (name, value, response.status_code)
        assert name.encode("latin-1", "replace").lower() not in (k.encode().lower() for k in response.headers)
        wait_for_log(errors, "InvalidResponseHeader")
        errors.write_text("")
    good = requests.get(f"http://127.0.0.1:{port}/", params={"name": "X-Good", "value": "caf\xe9 \tok"}, timeout=10)
    assert good.status_code == 200 and good.headers["X-Good"].encode("latin-1") == "caf\xe9 \tok".encode("latin-1")


def test_the_500s_own_bad_header_gives_a_bare_500(protocol: str) -> None:
    app = tether.Tether("bare")

    @app.after_request
    def everywhere(response: tether.Response) -> tether.Response:
        response.headers["X-Every"] = "a\x00b"
        return response

    app.add_url_rule("/", "index", lambda: "x")
    response = app.test_client(asgi=protocol == "asgi").get("/")
    assert response.status_code == 500
    assert "X-Every" not in response.headers


def test_a_bad_header_raises_when_testing(protocol: str) -> None:
    app = tether.Tether("testing")
    app.config["TESTING"] = True

    @app.route("/")
    def index() -> tether.Response:
        response = tether.Response("x")
        response.headers["X\r\nY"] = "v"
        return response

    with pytest.raises(ValueError, match="not an HTTP token"):
        app.test_client(asgi=protocol == "asgi").get("/")


HEADER_TEXT = st.text(st.characters(max_codepoint=0x2FF), max_size=12)


@settings(max_examples=400, deadline=None)
@given(name=st.one_of(HEADER_TEXT, st.sampled_from(["X-Ok", "Content-Type", "Set-Cookie"])), value=HEADER_TEXT)
def test_the_rule_is_http_and_what_passes_is_encoded_validly(name: str, value: str) -> None:
    assert (header_problem([(name, value)]) is None) == rfc9110_valid(name, value)
    if not rfc9110_valid(name, value):
        return
    app = tether.Tether("encode")
    with app.test_request_context("/"):
        response = tether.Response(b"x")
        response.headers.add(name, value)
        for sent_name, sent_value in wsgi_headers(response, tether.request.environ, 200):
            assert h11_accepts(sent_name.encode("latin-1"), sent_value.encode("latin-1"))
        for raw_name, raw_value in asgi_headers(response, tether.request, 200):
            assert h11_accepts(raw_name, raw_value)


class _Text(str):
    """A str subclass: not a plain header value."""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.sampled_from(["text/html; charset=utf-8", "13", "a\x00b", "\u20ac"])), max_size=6))
def test_header_problem_cache_of_good_values_changes_no_answer(values: list[str]) -> None:
    """The cache of values found good (``header_rules._GOOD_VALUES``) against the
    regular expression it spares: each value is judged alike, the first time and
    the second (from the cache), and a str subclass is refused even when its
    text is cached."""
    from tether.application import header_rules

    for value in values:
        expected = header_rules._FIELD_VALUE.fullmatch(value) is not None
        for _ in range(2):
            assert (header_problem([("X-Value", value)]) is None) is expected
        assert header_problem([("X-Value", _Text(value))]) is not None
