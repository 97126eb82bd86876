"""The body of an ASGI HTTP request, as the file-like ``wsgi.input`` that
Werkzeug's parsers read, and as chunks for async code.

A sync view reads it lazily from its worker thread, chunk by chunk through the
loop, so the loop never blocks and uploads stream through the parsers. An
async view has it read first, without blocking, into a spooled buffer; one
marked with ``tether.stream_body`` reads it as it arrives. ``MAX_CONTENT_LENGTH``
is enforced on what arrives, and a body over it is refused whole.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import typing as t

from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from ..typing import Receive

__all__ = ["RequestBody"]

_SPOOL_SIZE = 1024 * 1024
#: The buffer of every request without a body: always at its end, never written.
_NO_BODY = io.BytesIO()


class RequestBody:
    """The request body of an ASGI request, as the file-like ``wsgi.input``.

    Read from a worker thread, it fetches chunks through the loop; on the loop
    it serves what :meth:`load` buffered, or :meth:`chunks` as they arrive.
    Nothing else calls ``receive`` until the body is exhausted, so a chunk is
    never taken by the disconnect watcher.

    A body is delivered whole or not at all: past ``MAX_CONTENT_LENGTH`` reading
    it raises 413, and when the client disconnects before its last chunk,
    ``ClientDisconnected`` (400); so is every later read.
    """

    __slots__ = (
        "_receive", "_loop", "_max_length", "_received", "failure", "_pending", "_buffer", "_more",
        "_exhausted", "disconnected",
    )

    def __init__(self, receive: Receive, loop: asyncio.AbstractEventLoop, max_length: int | None) -> None:
        self._receive = receive
        self._loop = loop
        self._max_length = max_length
        self._received = 0
        #: Why the body cannot be read (an ``HTTPException`` class), once known.
        self.failure: type[HTTPException] | None = None
        self._pending = b""
        self._buffer: t.IO[bytes] | None = None
        self._more = True
        self._exhausted: asyncio.Event | None = None
        self.disconnected = False

    def _end(self) -> None:
        self._more = False
        if self._exhausted is not None:
            self._exhausted.set()

    @property
    def unread(self) -> bool:
        """Whether some of the body may still have to be received."""
        return self._buffer is None

    def refuse(self) -> None:
        """The body is declared over the limit: it is not read, and reading it
        raises 413."""
        self.failure = RequestEntityTooLarge
        self._end()

    def expect_none(self) -> None:
        """The request declares no body: nothing is read, and reads give ``b""``."""
        self._more = False
        self._buffer = _NO_BODY

    async def _next_chunk(self) -> bytes:
        if not self._more:
            return b""
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            self._end()
            # What arrived is not the body: the client stopped before its end.
            self.failure = ClientDisconnected
            raise ClientDisconnected()
        if not message.get("more_body", False):
            self._end()
        chunk: bytes = message.get("body", b"")
        self._received += len(chunk)
        if self._max_length is not None and self._received > self._max_length:
            # Werkzeug's limit would hand the view the first bytes without error:
            # refuse the whole body instead, so nothing is silently cut off.
            self.failure = RequestEntityTooLarge
            self._end()
            raise RequestEntityTooLarge()
        return chunk

    async def chunks(self) -> t.AsyncIterator[bytes]:
        """The body's chunks as they arrive (or from the buffer once loaded)."""
        if self._buffer is not None:
            while chunk := self._buffer.read(65536):
                yield chunk
            return
        if self._pending:
            chunk, self._pending = self._pending, b""
            yield chunk
        while self._more:
            chunk = await self._next_chunk()
            if chunk:
                yield chunk

    async def load(self, declared: int | None) -> None:
        """Read the rest of the body into a buffer: in memory when its declared
        length is at most 1 MiB, else spooled to a file past that size.

        Past the limit, or at a disconnect, it stops; reading the body then
        raises the error (413, 400).
        """
        if self._buffer is not None:
            return
        small = declared is not None and declared <= _SPOOL_SIZE
        buffer: t.IO[bytes] = io.BytesIO() if small else tempfile.SpooledTemporaryFile(max_size=_SPOOL_SIZE)
        buffer.write(self._pending)
        self._pending = b""
        try:
            while self._more:
                buffer.write(await self._next_chunk())
        except (RequestEntityTooLarge, ClientDisconnected):
            pass
        buffer.seek(0)
        self._buffer = buffer

    async def wait_disconnect(self) -> None:
        """Wait for the client to go away, once the body has been read."""
        if self._more:
            self._exhausted = asyncio.Event()
            await self._exhausted.wait()
        while not self.disconnected:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True

    def read(self, size: int = -1) -> bytes:
        if self.failure is not None:
            raise self.failure()
        if self._buffer is not None:
            return self._buffer.read(size)
        if size is None or size < 0:
            parts = [self._pending]
            self._pending = b""
            while self._more:
                parts.append(self._fetch())
            return b"".join(parts)
        while len(self._pending) < size and self._more:
            self._pending += self._fetch()
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def readline(self, size: int = -1) -> bytes:
        if self.failure is not None:
            raise self.failure()
        if self._buffer is not None:
            return self._buffer.readline(size)
        while b"\n" not in self._pending and self._more and (size < 0 or len(self._pending) < size):
            self._pending += self._fetch()
        end = self._pending.find(b"\n") + 1 or len(self._pending)
        if size >= 0:
            end = min(end, size)
        data, self._pending = self._pending[:end], self._pending[end:]
        return data

    def _fetch(self) -> bytes:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError(
                "The request body was read synchronously on the event loop before it was "
                "loaded. An async view marked with @tether.stream_body reads it with "
                "'async for chunk in request.iter_body()'."
            )
        return asyncio.run_coroutine_threadsafe(self._next_chunk(), self._loop).result()

    def close(self) -> None:
        if self._buffer is not None and self._buffer is not _NO_BODY:
            self._buffer.close()
