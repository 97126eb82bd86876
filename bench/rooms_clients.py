"""One client process of ``bench/rooms_bench.py``: opens WebSockets, each to
one room, and counts for each step what reached them, how late, and what never
did.

Every message is ``"STEP ROOM SEQ SENT padding"``: ``SEQ`` counts a room's
messages within a step from 1, ``SENT`` is the publisher's ``time.time()``.
Connection ``i`` (of ``FIRST`` up to ``FIRST + COUNT``) is in room ``i % ROOMS``.
A message missing at a connection is a gap in its room's ``SEQ``, or one after
the last it received, up to what the publishers say they sent.

It speaks the three dialects with bare asyncio protocols and a hand-written
frame reader, no compression negotiated (as ``fanout_clients.py``), so that a
delivery costs the clients as little as it can:

- ``tether`` and ``channels``: ``/ws/ROOM`` (``/ws/ROOM/``); each text frame is
  one message (tether's a JSON string, so in quotes).
- ``socketio``: Engine.IO 4 straight over WebSocket; the connect packet names
  the room (``40{"room": ROOM}``), a message is ``42["msg","..."]``, and the
  server's pings (``2``) are answered (``3``).

    python rooms_clients.py DIALECT PORT SOURCE_IP FIRST COUNT ROOMS
    stdout: "ready"; then, per "report STEP FINALS_JSON DRAIN" line on stdin, a JSON
    line of that step's figures; "quit" (or end of input) ends it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

try:
    import uvloop
except ImportError:  # pragma: no cover - the bench extra installs it
    uvloop = None

CONNECTS_AT_ONCE = 128


class Step:
    """One step's deliveries to this process: how many, how late (a histogram
    in whole milliseconds), and gaps in the rooms' sequences."""

    __slots__ = ("received", "gaps", "disorder", "late")

    def __init__(self) -> None:
        self.received = 0
        self.gaps = 0
        self.disorder = 0
        self.late: dict[int, int] = {}


class Tally:
    """Every connection's step figures, by step; a step reported is closed."""

    def __init__(self) -> None:
        self.steps: dict[int, Step] = {}
        self.closed: set[int] = set()
        self.after_report = 0

    def step(self, number: int) -> Step | None:
        found = self.steps.get(number)
        if found is None:
            if number in self.closed:
                return None
            found = self.steps[number] = Step()
        return found


class Conn(asyncio.Protocol):
    """One WebSocket in one room: sends the handshake, reads frames."""

    def __init__(self, dialect: str, room: int, tally: Tally) -> None:
        self.dialect = dialect
        self.room = room
        self.tally = tally
        self.buffer = b""
        self.upgraded = False
        self.last_step = 0
        self.last_seq = 0
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        target = {"tether": f"/ws/{self.room}", "channels": f"/ws/{self.room}/",
                  "socketio": "/socket.io/?EIO=4&transport=websocket"}[self.dialect]
        transport.write(
            f"GET {target} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed before it was ready"))

    def send_text(self, text: bytes) -> None:
        """A client frame: masked, with a zero key (the payload as is)."""
        assert self.transport is not None and len(text) < 126
        self.transport.write(bytes([0x81, 0x80 | len(text)]) + b"\0\0\0\0" + text)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            head, sep, buffer = buffer.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = head
                return
            if self.ready.done():  # given up on
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(head.decode(errors="replace")))
                return
            self.upgraded = True
            if self.dialect != "socketio":
                self.ready.set_result(None)
        now = time.time()
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            end = start + length
            if len(buffer) < end:
                break
            payload, buffer = buffer[start:end], buffer[end:]
            if opcode == 0x1:
                self.text(payload, now)
            elif opcode == 0x9 and self.transport is not None:  # ping: pong, masked with a zero key
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        self.buffer = buffer

    def text(self, payload: bytes, now: float) -> None:
        if self.dialect == "tether":
            self.message(payload[1:-1], now)
        elif self.dialect == "channels":
            self.message(payload, now)
        elif payload.startswith(b'42["msg","'):
            self.message(payload[10:-2], now)
        elif payload == b"2":
            self.send_text(b"3")
        elif payload.startswith(b"0{"):  # Engine.IO open: join the room
            self.send_text(b'40{"room":%d}' % self.room)
        elif payload.startswith(b"40") and not self.ready.done():
            self.ready.set_result(None)

    def message(self, text: bytes, now: float) -> None:
        step_text, _, seq_text, sent_text = text.split(b" ", 4)[:4]
        number, seq = int(step_text), int(seq_text)
        step = self.tally.step(number)
        if step is None:
            self.tally.after_report += 1
            return
        if number != self.last_step:
            self.last_step, self.last_seq = number, 0
        if seq > self.last_seq:
            step.gaps += seq - self.last_seq - 1
            self.last_seq = seq
        else:
            step.disorder += 1
        step.received += 1
        late = int((now - float(sent_text)) * 1000)
        step.late[late] = step.late.get(late, 0) + 1

    def missing_at_end(self, number: int, finals: dict[str, int]) -> int:
        """Messages of step ``number`` after the last this connection received."""
        final = finals.get(str(self.room), 0)
        return max(final - (self.last_seq if self.last_step == number else 0), 0)


async def connect(conn: Conn, port: int, host: str, gate: asyncio.Semaphore) -> None:
    async with gate:
        await asyncio.get_running_loop().create_connection(lambda: conn, "127.0.0.1", port, local_addr=(host, 0))
        await asyncio.wait_for(conn.ready, 60)


async def report(conns: list[Conn], tally: Tally, number: int, finals: dict[str, int], drain: float) -> str:
    """Wait until every connection has its room's last message of the step (or
    ``drain`` seconds), then that step's figures."""
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and any(c.missing_at_end(number, finals) for c in conns):
        await asyncio.sleep(0.05)
    step = tally.steps.pop(number, None) or Step()
    tally.closed.add(number)
    tail = sum(c.missing_at_end(number, finals) for c in conns)
    return json.dumps({"received": step.received, "lost": step.gaps + tail, "disorder": step.disorder,
                       "late": step.late, "after_report": tally.after_report})


async def main(dialect: str, port: int, host: str, first: int, count: int, rooms: int) -> None:
    tally = Tally()
    conns = [Conn(dialect, i % rooms, tally) for i in range(first, first + count)]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    await asyncio.gather(*(connect(conn, port, host, gate) for conn in conns))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        words = line.split(maxsplit=3)
        if not words or words[0] == "quit":
            break
        number, finals, drain = int(words[1]), json.loads(words[2]), float(words[3])
        sys.stdout.write(await report(conns, tally, number, finals, drain) + "\n")
        sys.stdout.flush()
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


if __name__ == "__main__":
    if uvloop is not None:
        uvloop.install()
    dialect, port, host, first, count, rooms = sys.argv[1:7]
    asyncio.run(main(dialect, int(port), host, int(first), int(count), int(rooms)))
