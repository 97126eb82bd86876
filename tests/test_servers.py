"""Real WSGI servers: gunicorn (sync, gthread) and `tether run` (Werkzeug's server)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import requests

from support import wait_for_lines

SERVERS = Path(__file__).parent / "servers"
PYTHON = sys.executable

COMMANDS = {
    "gunicorn-sync": [PYTHON, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "stream_app:app"],
    "gunicorn-gthread": [
        PYTHON, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "-k", "gthread", "--threads", "4",
        "stream_app:app",
    ],
    "tether-run-wsgi": [PYTHON, "-m", "tether", "--app", "stream_app:app", "run", "--wsgi", "--port", "{port}"],
}


@pytest.mark.parametrize("server", list(COMMANDS))
def test_stream_client_disconnect_runs_teardown_once(server: str, serve: object, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    port = serve(COMMANDS[server], cwd=SERVERS, env={"EVENTS_FILE": str(events)})  # type: ignore[operator]
    base = f"http://127.0.0.1:{port}"
    assert requests.get(base + "/", timeout=10).text == "hello"
    assert wait_for_lines(events, 1) == ["teardown /"]

    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /stream?token=t1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    received = b""
    while received.count(b"/stream t1") < 3:
        chunk = sock.recv(65536)
        assert chunk, "server closed the stream"
        received += chunk
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()

    lines = wait_for_lines(events, 3)
    assert lines[1:3] == ["finally /stream t1", "teardown /stream"]
    for _ in range(3):
        assert requests.get(base + "/", timeout=10).text == "hello"
    lines = wait_for_lines(events, 6)
    assert lines == [
        "teardown /", "finally /stream t1", "teardown /stream", "teardown /", "teardown /", "teardown /",
    ]
    assert "leftover context" not in lines


@pytest.mark.parametrize("server", ["gunicorn-sync", "gunicorn-gthread"])
def test_stream_read_to_a_limit_under_gunicorn(server: str, serve: object, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    port = serve(COMMANDS[server], cwd=SERVERS, env={"EVENTS_FILE": str(events)})  # type: ignore[operator]
    with requests.get(f"http://127.0.0.1:{port}/stream?token=t2", stream=True, timeout=10) as response:
        lines = []
        for line in response.iter_lines():
            if line.startswith(b"x"):
                continue
            lines.append(line.decode())
            if len(lines) == 5:
                break
    assert lines == [f"{n} /stream t2" for n in range(1, 6)]
    assert wait_for_lines(events, 2) == ["finally /stream t2", "teardown /stream"]
