"""Hostile clients and careless users over real servers (uvicorn, gunicorn):
no bad input reaches a 500, no body is taken for whole when it is not, no
pool can be starved, no client can fill the log."""

from __future__ import annotations

import json
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import websockets
from websockets.sync.client import connect
from werkzeug.test import EnvironBuilder

import tether
from support import Server, wait_for

ROOT = Path(__file__).parent.parent
SERVERS = Path(__file__).parent / "servers"
PYTHON = sys.executable
COMMANDS = {
    "uvicorn": [PYTHON, "-m", "uvicorn", "--port", "{port}", "hostile_app:app"],
    "gunicorn": [
        PYTHON, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "4",
        "hostile_app:app",
    ],
}


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    servers: list[Server] = []

    def start(name: str, **env: str) -> Server:
        server = Server(COMMANDS[name], tmp_path / f"{name}-{len(servers)}", env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def exchange(port: int, data: bytes, half_close: bool = False, timeout: float = 10.0) -> bytes:
    """Send ``data`` raw; everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return received


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


# 1. Sync WebSocket handlers hold threads of their own.


def test_idle_sync_websockets_do_not_starve_sync_views(start: object) -> None:
    server = start("uvicorn", WEBSOCKET_SYNC_THREADS="8")  # type: ignore[operator]
    with ExitStack() as stack:
        # More idle sync handlers than SYNC_THREADS (4) hold threads.
        sockets = [stack.enter_context(connect(f"ws://127.0.0.1:{server.port}/ws/idle")) for _ in range(8)]
        for ws in sockets:
            ws.send("ping")
            assert ws.recv(timeout=10) == "ping"
        response = exchange(server.port, b"GET /sync HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert status_of(response) == 200 and response.endswith(b"sync ok")
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            stack.enter_context(connect(f"ws://127.0.0.1:{server.port}/ws/idle", open_timeout=10))
        assert refused.value.response.status_code == 503
    assert "all 8 WEBSOCKET_SYNC_THREADS hold open connections" in server.output()


# 2. A chunked body over MAX_CONTENT_LENGTH is refused whole.


def chunked(body: bytes, size: int = 16384) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("server_name", list(COMMANDS))
@pytest.mark.parametrize("path", ["/length", "/async-length"])
def test_chunked_body_over_the_limit_is_413(start: object, server_name: str, path: str) -> None:
    server = start(server_name)  # type: ignore[operator]
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    response = exchange(server.port, head.encode() + chunked(b"x" * 200_000))
    assert status_of(response) == 413
    small = exchange(server.port, head.encode() + chunked(b"y" * 1000))
    assert status_of(small) == 200 and small.endswith(b"\r\n\r\n1000")
    assert not any(line.startswith(f"seen {path} 65536") for line in server.lines())


# 3. A body shorter than its Content-Length never reaches a view as data.


@pytest.mark.parametrize(("server_name", "path"), [
    ("uvicorn", "/length"), ("uvicorn", "/async-length"), ("gunicorn", "/length"),
])
def test_a_truncated_body_never_reaches_the_view(start: object, server_name: str, path: str) -> None:
    server = start(server_name)  # type: ignore[operator]
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 60000\r\nConnection: close\r\n\r\n"
    exchange(server.port, head.encode() + b"z" * 20_000, half_close=True)
    complete = exchange(server.port, head.encode() + b"z" * 60_000)
    assert status_of(complete) == 200 and complete.endswith(b"60000")
    wait_for(lambda: f"seen {path} 60000" in server.lines())
    assert f"seen {path} 20000" not in server.lines()
    if path == "/length" or server_name == "gunicorn":
        wait_for(lambda: f"refused {path} ClientDisconnected" in server.lines())


# 4. Errors before a stream's first chunk get their own response; after it,
# the response is cut off so that the client can tell.


@pytest.mark.parametrize("server_name", list(COMMANDS))
def test_stream_errors_before_the_first_chunk_get_their_status(start: object, server_name: str) -> None:
    server = start(server_name)  # type: ignore[operator]

    def post(body: bytes, content_type: str) -> bytes:
        head = (
            f"POST /stream-json HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        return exchange(server.port, head.encode() + body)

    assert status_of(post(b"name=ada", "application/x-www-form-urlencoded")) == 415
    missing = post(b"{}", "application/json")
    assert status_of(missing) == 400 and b"name is required" in missing
    assert status_of(post(b"{nope", "application/json")) == 400
    good = post(b'{"name": "ada"}', "application/json")
    assert status_of(good) == 200 and b"hello ada" in good
    handled = exchange(server.port, b"GET /stream-lookup HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status_of(handled) == 404 and handled.endswith(b"no such thing")
    assert "Traceback" not in server.output()


@pytest.mark.parametrize("server_name", list(COMMANDS))
def test_stream_errors_after_the_first_chunk_cut_the_response(start: object, server_name: str) -> None:
    server = start(server_name)  # type: ignore[operator]
    cut = exchange(server.port, b"GET /stream-fails-later HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status_of(cut) == 200 and b"first chunk" in cut
    assert not cut.endswith(b"0\r\n\r\n"), "a cut-off response must not end with the last chunk"
    events = exchange(server.port, b"GET /events-fail HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert b'data: {"n": 1}' in events and b"event: error\ndata: The event stream failed." in events
    assert not events.endswith(b"0\r\n\r\n")
    wait_for(lambda: server.output().count("the event source broke") >= 1)
    server.stop()
    output = server.output()
    assert output.count("RuntimeError: the generator broke after its first chunk") == 1
    assert output.count("RuntimeError: the event source broke") == 1


# 5. A WebSocket handshake with an untrusted Host is a 400, whatever its Origin.


def test_websocket_handshake_with_an_untrusted_host_is_400(start: object) -> None:
    server = start("uvicorn")  # type: ignore[operator]
    for origin in ("", "Origin: http://evil.example\r\n"):
        handshake = (
            "GET /ws/echo HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
        )
        assert status_of(exchange(server.port, handshake.encode())) == 400
    assert "Traceback" not in server.output()


# 6. Bad JSON on a socket closes it with 1007, logged at most once a minute.
# 9. A message over WEBSOCKET_MAX_MESSAGE_SIZE closes it with 1009.


def test_bad_websocket_messages_close_with_their_codes(start: object) -> None:
    server = start("uvicorn")  # type: ignore[operator]
    base = f"ws://127.0.0.1:{server.port}"
    for _ in range(5):
        with connect(f"{base}/ws/json") as ws:
            ws.send(json.dumps({"ok": True}))
            assert json.loads(ws.recv(timeout=10)) == {"ok": True}
            ws.send("not json")
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 1007
    with connect(f"{base}/ws/echo", max_size=None) as ws:
        ws.send("a" * 1000)
        assert ws.recv(timeout=10) == "a" * 1000
        ws.send("b" * 100_000)
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1009
    wait_for(lambda: len([line for line in server.lines() if line.startswith("teardown ws")]) == 6)
    output = server.output()
    assert output.count("closed with 1007") == 1 and "Traceback" not in output


# 7. JSON nested too deeply is a 400.


def test_deeply_nested_json_is_400(app: tether.Tether) -> None:
    @app.post("/")
    def index() -> str:
        return str(type(tether.request.json))

    body = "[" * 30_000 + "]" * 30_000
    response = app.test_client().post("/", data=body, content_type="application/json")
    assert response.status_code == 400 and b"nested too deeply" in response.data


def test_deeply_nested_json_on_a_socket_is_1007(app: tether.Tether) -> None:
    @app.websocket("/ws")
    async def ws() -> None:
        await tether.websocket.receive_json()

    client = app.test_client(asgi=True)
    with client.websocket("/ws") as session:
        session.send("[" * 30_000 + "]" * 30_000)
        with pytest.raises(tether.testing.ConnectionClosed) as closed:
            session.receive()
    assert closed.value.code == 1007


# 8. At shutdown a running sync job is asked to stop; one that does not is
# logged by name as abandoned, never as cancelled.


def test_shutdown_asks_running_sync_jobs_to_stop(start: object) -> None:
    server = start("uvicorn")  # type: ignore[operator]
    response = exchange(server.port, b"POST /spawn HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 200
    wait_for(lambda: {"job cooperative started", "job stubborn started"} <= set(server.lines()))
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    lines = server.lines()
    assert "teardown job cooperative" in lines
    output = server.output()
    assert "cooperative was still running 0.5 s into shutdown and was cancelled" in output
    assert "stubborn was still running 0.5 s into shutdown and did not stop when asked" in output
    assert "It is abandoned" in output


def test_a_redirect_keeps_the_query_with_its_control_characters_encoded() -> None:
    app = tether.Tether(__name__)
    app.add_url_rule("/user/<int:id>", "user", lambda id: str(id))
    environ = EnvironBuilder("/user//0").get_environ()
    environ["QUERY_STRING"] = "a=[1]&b=%20\r\n"  # as a server passes raw bytes on
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    b"".join(app(environ, lambda status, headers, exc_info=None: seen.append((status, headers))))
    status, headers = seen[0]
    assert status.startswith("308")
    assert dict(headers)["Location"].endswith("/user/0?a=%5B1%5D&b=%20%0D%0A")
