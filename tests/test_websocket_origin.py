"""WEBSOCKET_ALLOWED_ORIGINS through a real uvicorn: origins are compared whole
(never as substrings), a str is one origin, a list several, set directly or
from the environment, and the site's own pages are always allowed."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import Servers
from tether import Tether, websocket
from tether.serving.origins import allowed_origins
from tether.testing import WebSocketRejected

SERVERS = Path(__file__).parent / "servers"
ALLOWED = "https://app.example.com"
OTHER = "https://other.example:8443"


def handshake_status(port: int, origin: str | None) -> int:
    """The status of a WebSocket handshake to /ws with this ``Origin`` (none if None)."""
    lines = [
        "GET /ws HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk, "the server closed without answering"
            head += chunk
    return int(head.split(b" ", 2)[1])


def start(serve: Servers, setting: object, from_env: bool) -> int:
    env = {"ORIGINS_FROM_ENV": "1" if from_env else ""}
    if from_env:
        # A plain URL is not JSON: from_prefixed_env leaves it a str.
        env["TETHER_WEBSOCKET_ALLOWED_ORIGINS"] = setting if isinstance(setting, str) else json.dumps(setting)
    else:
        env["ORIGINS"] = json.dumps(setting)
    argv = [sys.executable, "-m", "uvicorn", "origin_app:app", "--port", "{port}", "--log-level", "warning"]
    return serve(argv, SERVERS, env)


def refused_variants(port: int) -> list[str]:
    """Origins near the allowed and own ones that must not open a socket."""
    return [
        "https://app.example.co", "https://app.example.comm", "https://app.example.com.evil.com",
        "https://pp.example.com", "https://xapp.example.com", "e", "h", "", "null", "https:", "app.example.com",
        "http://app.example.com", "https://app.example.com:444", "https://app.example.com:8443",
        "wss://app.example.com", "https://app.example.com/", "https://app.example.com/x",
        "https://app.example.com?x", "https://user@app.example.com", "https://app.example.com.",
        "https://other.example", "http://other.example:8443", "https://evil.example",
        "http://127.0.0.1", f"http://127.0.0.1:{port + 1}", f"http://localhost:{port}",
        f"http://127.0.0.1:{port}/", "*",
    ]


def allowed_variants(port: int) -> list[str]:
    return [
        ALLOWED, "HTTPS://APP.EXAMPLE.COM", "https://App.Example.Com", "https://app.example.com:443",
        f"http://127.0.0.1:{port}", f"HTTP://127.0.0.1:{port}",
        # A TLS proxy that does not say so makes wss look like ws: an https page is the site's own.
        f"https://127.0.0.1:{port}",
    ]


@pytest.mark.parametrize("from_env", [False, True], ids=["direct", "env"])
@pytest.mark.parametrize("setting", [ALLOWED, [ALLOWED, OTHER]], ids=["str", "list"])
def test_origins_are_compared_whole(serve: Servers, setting: object, from_env: bool) -> None:
    port = start(serve, setting, from_env)
    got = {origin: handshake_status(port, origin) for origin in refused_variants(port) + allowed_variants(port)}
    expected = {origin: 403 for origin in refused_variants(port)} | {origin: 101 for origin in allowed_variants(port)}
    if isinstance(setting, list):
        expected |= {OTHER: 101, "HTTPS://Other.Example:8443": 101}
        got |= {o: handshake_status(port, o) for o in (OTHER, "HTTPS://Other.Example:8443")}
    assert got == expected
    # Not a browser: a browser always sends Origin on a WebSocket handshake.
    assert handshake_status(port, None) == 101


def test_without_the_setting_only_own_pages(serve: Servers) -> None:
    port = serve([sys.executable, "-m", "uvicorn", "origin_app:app", "--port", "{port}"], SERVERS)
    assert handshake_status(port, ALLOWED) == 403
    assert handshake_status(port, "") == 403
    assert handshake_status(port, None) == 101
    assert handshake_status(port, f"http://127.0.0.1:{port}") == 101


def test_star_allows_any(serve: Servers) -> None:
    port = start(serve, "*", from_env=True)
    assert {handshake_status(port, o) for o in ["https://evil.example", "null", "", ALLOWED]} == {101}


@pytest.mark.parametrize(
    "setting",
    ["app.example.com", "https://app.example.com/", "https://a.example, https://b.example", ["https://a.example", 3],
     b"https://a.example", {"https://a.example": 1}, "null", ""],
)
def test_a_setting_that_is_not_an_origin_is_refused(setting: object) -> None:
    with pytest.raises((TypeError, ValueError), match="WEBSOCKET_ALLOWED_ORIGINS"):
        allowed_origins(setting)


def test_a_wrong_setting_stops_the_server_at_startup(serve: Servers) -> None:
    env = {"ORIGINS": json.dumps("https://a.example, https://b.example")}
    with pytest.raises(RuntimeError, match="not an origin"):
        serve([sys.executable, "-m", "uvicorn", "origin_app:app", "--port", "{port}", "--lifespan", "on"], SERVERS, env)


@pytest.fixture(scope="module")
def list_server() -> Iterator[int]:
    servers = Servers()
    try:
        yield start(servers, [ALLOWED, OTHER], from_env=True)
    finally:
        for proc in servers.procs:
            proc.terminate()
            proc.wait(timeout=10)


SCHEMES = ["https", "HTTPS", "Https", "http", "wss", "ws", "ftp", ""]
SEPARATORS = ["://", ":/", "//", ":///"]
HOSTS = ["app.example.com", "APP.example.COM", "app.example.co", "pp.example.com", "app.example.com.",
         "app.example.com.evil", "evil.app.example.com", "other.example", "127.0.0.1", "localhost", ""]
TAILS = ["", "/", "/x", "?x", "#x", "@evil", ".evil"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_only_whole_origins_open(list_server: int, data: st.DataObject) -> None:
    """Origins built from pieces near the allowed ones open a socket exactly when,
    as a browser writes origins, they are an allowed one or the site's own."""
    port = list_server
    scheme, sep, host, tail = (data.draw(st.sampled_from(x)) for x in (SCHEMES, SEPARATORS, HOSTS, TAILS))
    port_part = data.draw(st.sampled_from(["", ":443", ":444", ":8443", ":80", ":", f":{port}", f":{port + 1}"]))
    origin = data.draw(st.one_of(
        st.just(f"{scheme}{sep}{host}{port_part}{tail}"),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),
    ))
    default = {"https": ":443", "http": ":80"}.get(scheme.lower())
    normal = f"{scheme.lower()}://{host.lower()}{'' if port_part == default else port_part}"
    whole = origin == f"{scheme}{sep}{host}{port_part}{tail}" and sep == "://" and tail == ""
    opens = whole and normal in {
        ALLOWED, OTHER, f"http://127.0.0.1:{port}", f"https://127.0.0.1:{port}",
    }
    assert handshake_status(port, origin) == (101 if opens else 403), origin


def test_the_test_client_applies_the_same_rule() -> None:
    app = Tether(__name__)
    app.config["WEBSOCKET_ALLOWED_ORIGINS"] = ALLOWED

    @app.websocket("/ws")
    async def ws() -> None:
        await websocket.send("in")

    client = app.test_client(asgi=True)
    with client.websocket("/ws", headers={"Origin": ALLOWED}) as opened:
        assert opened.receive() == "in"
    with pytest.raises(WebSocketRejected) as rejected, client.websocket("/ws", headers={"Origin": "https://app.example.co"}):
        pass
    assert rejected.value.status == 403
