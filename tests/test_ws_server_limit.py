"""``tether run`` hands WEBSOCKET_MAX_MESSAGE_SIZE to uvicorn, so a message over it
is refused while it arrives: the server never holds more than the limit."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

import pytest

from support import Servers

SERVERS = Path(__file__).parent / "servers"
LIMIT = 1000


def frame(opcode: int, payload: bytes, *, fin: bool = True, announced: int | None = None) -> bytes:
    """A masked client frame; ``announced`` is the length its header claims."""
    length = len(payload) if announced is None else announced
    head = bytes([(0x80 if fin else 0) | opcode])
    if length < 126:
        head += bytes([0x80 | length])
    elif length < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", length)
    return head + b"\0\0\0\0" + payload  # a zero mask leaves the payload as it is


class RawSocket:
    """A WebSocket client that sends frames as they are written, to say a
    message is huge without sending it."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.sock.sendall(
            f"GET /echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the TCP connection without a close frame"
        return chunk

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += self._recv()
        taken, self.buffer = self.buffer[:n], self.buffer[n:]
        return taken

    def next_frame(self) -> tuple[int, bytes]:
        """The next frame from the server (unmasked): its opcode and payload."""
        first, second = self._take(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._take(8))[0]
        return first & 0x0F, self._take(length)

    def close_code(self) -> int:
        """The code of the server's close frame (waiting up to the socket's timeout)."""
        while True:
            opcode, payload = self.next_frame()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0]


@pytest.fixture
def port(serve: Servers) -> int:
    argv = [sys.executable, "-m", "tether", "run", "--no-reload", "--port", "{port}"]
    return serve(argv, SERVERS, {"TETHER_APP": "ws_limit_app"})


def test_a_message_within_the_limit_is_echoed(port: int) -> None:
    ws = RawSocket(port)
    ws.sock.sendall(frame(0x2, b"x" * LIMIT))
    assert ws.next_frame() == (0x2, b"x" * LIMIT)


def test_a_frame_announcing_a_huge_message_is_refused_before_it_is_sent(port: int) -> None:
    """The header says 12 MiB; only 2,000 bytes follow. The close comes anyway: the
    server did not wait for (or hold) the message. With uvicorn's own 16 MiB limit
    it would wait for the rest, and this would time out."""
    ws = RawSocket(port)
    ws.sock.sendall(frame(0x2, b"y" * 2000, announced=12 * 1024 * 1024))
    assert ws.close_code() == 1009


def test_a_message_in_fragments_is_refused_once_they_pass_the_limit(port: int) -> None:
    """Fragments of 600 bytes, never finished: the second one passes the limit."""
    ws = RawSocket(port)
    ws.sock.sendall(frame(0x2, b"z" * 600, fin=False) + frame(0x0, b"z" * 600, fin=False))
    assert ws.close_code() == 1009
