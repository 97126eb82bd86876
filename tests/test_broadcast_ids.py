"""Whatever a client sends as ``Last-Event-ID`` (non-ASCII digits such as
``²``, numbers too big for an id, negative ones, missing parts, junk) is read
like an unknown id, never a 5xx: on ``memory://`` and ``redis://``, through a
broadcast feed and through ``task_events``, in the test client and under real
servers."""

from __future__ import annotations

import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from support import SHARED, Servers, need_redis
from tether.live.broadcast.history import id_key

SERVERS = Path(__file__).parent / "servers"
#: What a header value can hold once read (latin-1), but for line breaks and NUL.
HEADER_TEXT = st.text(st.characters(min_codepoint=1, max_codepoint=0xFF, exclude_characters="\r\n"), max_size=40)
#: Ids of the right shape, with parts around Redis's 64-bit limit.
ID_LIKE = st.builds(
    lambda a, b: f"{a}-{b}", st.integers(-5, 2**65), st.integers(-5, 2**65)
)
MALFORMED = ["\xb2-0", "0-\xb2", "\u0663-0", "1", "-", "-1-0", "1-", "-0", "1-2-3", " 1-0", "1-0 ", "+1-0",
             "1_0-0", "18446744073709551616-0", "0-18446744073709551616", "9" * 400 + "-0", ""]


@pytest.mark.parametrize("last_id", MALFORMED)
def test_a_malformed_id_has_no_key(last_id: str) -> None:
    assert id_key(last_id) is None


@given(HEADER_TEXT | ID_LIKE)
def test_an_id_key_is_ascii_digits_within_64_bits(last_id: str) -> None:
    key = id_key(last_id)
    parts = last_id.split("-")
    well_formed = (
        len(parts) == 2 and all(part.isascii() and part.isdigit() and int(part) < 2**64 for part in parts)
    )
    assert (key is not None) == well_formed
    if key is not None:
        assert key == (int(parts[0]), int(parts[1]))


@pytest.fixture(params=["memory", "redis"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A broadcast URL; on the shared Redis, this test's keys are deleted after."""
    if request.param == "memory":
        yield "memory://"
        return
    need_redis()
    yield SHARED
    client = redis.Redis.from_url(SHARED)
    for key in client.scan_iter(match="*ids-test-*", count=1000):
        client.delete(key)


def raw_get(port: int, path: str, last_id: bytes) -> bytes:
    """The response to a request whose ``Last-Event-ID`` is ``last_id``, raw
    bytes on the wire, read up to the first event."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nLast-Event-ID: " + last_id + b"\r\n\r\n")
        received = b""
        deadline = time.monotonic() + 10
        while b"\n\n" not in received.partition(b"\r\n\r\n")[2] and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


SERVER_COMMANDS = {
    "uvicorn": [sys.executable, "-m", "uvicorn", "--port", "{port}", "last_id_app:app"],
    "gunicorn": [sys.executable, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-k", "gthread", "--threads", "4",
                 "last_id_app:app"],
}


@pytest.mark.parametrize("server", sorted(SERVER_COMMANDS))
def test_a_latin1_superscript_digit_under_real_servers(serve: Servers, url: str, server: str) -> None:
    port = serve(SERVER_COMMANDS[server], cwd=SERVERS, env={"BROADCAST_URL": url})
    channel = f"ids-test-{uuid.uuid4().hex}"
    for path in (f"/feed/{channel}", f"/tasks/{channel}/events"):
        response = raw_get(port, path, b"\xb2-0")
        head, _, body = response.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), response
        assert b"event: gap" in body and b'"last_id": "\\u00b2-0"' in body, response
