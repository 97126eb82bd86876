"""One client process of ``bench/fanout_bench.py``: opens SSE streams and
WebSockets to the server, reports when all are connected, then reports for
each message when the last of its clients received it.

It speaks both protocols with bare asyncio protocols (no stream objects, no
parsing library, no compression negotiated), so that reading a message costs
the clients as little as it can: with every client on one core, that cost is
part of what the bench measures.

    python fanout_clients.py PORT SOURCE_IP N_SSE N_WS
    stdout: "ready", then "got MESSAGE TIME" per message; stdin: any line ends it
"""

from __future__ import annotations

import asyncio
import sys
import time

try:
    import uvloop
except ImportError:  # pragma: no cover - the bench extra installs it
    uvloop = None

CONNECTS_AT_ONCE = 256
SSE_REQUEST = b"GET /feed HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
WS_REQUEST = (
    b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Tally:
    """When each message reached the last of this process's clients."""

    def __init__(self, clients: int) -> None:
        self.clients = clients
        self.counts: dict[bytes, int] = {}

    def got(self, message: bytes) -> None:
        count = self.counts.get(message, 0) + 1
        self.counts[message] = count
        if count == self.clients:
            sys.stdout.write(f"got {message.decode()} {time.perf_counter()!r}\n")
            sys.stdout.flush()


class Client(asyncio.Protocol):
    """Sends its request, waits for the head of the answer, then reads messages."""

    request = b""
    status = b""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.buffer = b""
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.connected.done():
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(self.status):
                self.connected.set_exception(RuntimeError(head.decode()))
                return
            self.connected.set_result(None)
            self.buffer = rest
        self.messages()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc or ConnectionError("closed before the answer"))

    def messages(self) -> None:
        raise NotImplementedError


class SSEClient(Client):
    request = SSE_REQUEST
    status = b"HTTP/1.1 200"

    def messages(self) -> None:
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"data: "):
                self.tally.got(line[6:])


class WSClient(Client):
    request = WS_REQUEST
    status = b"HTTP/1.1 101"

    def messages(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length, start = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                break
            payload, buffer = buffer[start:start + length], buffer[start + length:]
            if opcode == 0x1:
                self.tally.got(payload)
            elif opcode == 0x9 and self.transport is not None:  # ping: pong, masked with a zero key
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        self.buffer = buffer


async def connect(kind: type[Client], port: int, host: str, tally: Tally, gate: asyncio.Semaphore) -> asyncio.Transport:
    async with gate:
        transport, client = await asyncio.get_running_loop().create_connection(
            lambda: kind(tally), "127.0.0.1", port, local_addr=(host, 0)
        )
        await client.connected
        return transport


async def main(port: int, host: str, n_sse: int, n_ws: int) -> None:
    tally = Tally(n_sse + n_ws)
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    kinds = [SSEClient] * n_sse + [WSClient] * n_ws
    transports = await asyncio.gather(*(connect(kind, port, host, tally, gate) for kind in kinds))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for transport in transports:
        transport.close()


if __name__ == "__main__":
    if uvloop is not None:
        uvloop.install()
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
