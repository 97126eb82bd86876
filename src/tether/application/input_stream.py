"""The request body as read from a WSGI server's input: all of it, or an error.

Werkzeug trusts a server that sets ``wsgi.input_terminated`` (gunicorn does)
and reads its input raw: a client that declares ``Content-Length: 1000000``
and disconnects after 100,000 bytes hands the view 100,000 bytes as if they
were the body, and a chunked body is cut at ``MAX_CONTENT_LENGTH`` without an
error. :class:`CheckedStream` refuses both: a body that ends before its
declared length raises ``ClientDisconnected`` (400), one that goes past the
limit raises ``RequestEntityTooLarge`` (413), so no view ever takes part of a
body for the whole of it.
"""

from __future__ import annotations

import io
import typing as t

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

__all__ = ["CheckedStream"]


class CheckedStream(io.RawIOBase):
    """``stream``, read up to ``length`` bytes (its declared length, if any),
    with at most ``limit`` bytes allowed (``MAX_CONTENT_LENGTH``, if any)."""

    def __init__(self, stream: t.Any, length: int | None, limit: int | None) -> None:
        self._stream = stream
        self._length = length
        self._limit = limit
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        view = memoryview(buffer)
        if self._length is not None:
            view = view[: self._length - self._position]
        elif self._limit is not None:
            # One byte past the limit is enough to know the body is too large.
            view = view[: self._limit + 1 - self._position]
        if not len(view):
            return 0
        data = self._stream.read(len(view))
        if not data:
            if self._length is not None:
                raise self._ended_early()
            return 0
        count = len(data)
        view[:count] = data
        self._position += count
        if self._limit is not None and self._position > self._limit:
            raise RequestEntityTooLarge()
        return count

    def readall(self) -> bytes:
        """The rest of a body of declared length in as few reads of the server's
        input as it allows (usually one), where ``RawIOBase`` would go through
        :meth:`readinto` and a buffer: ``request.get_data()`` reads this way."""
        if self._length is None:
            return super().readall() or b""
        chunks = []
        while (remaining := self._length - self._position) > 0:
            data = self._stream.read(remaining)
            if not data:
                raise self._ended_early()
            chunks.append(data)
            self._position += len(data)
        return b"".join(chunks)

    def _ended_early(self) -> ClientDisconnected:
        return ClientDisconnected(f"The request body ended after {self._position} of its {self._length} bytes.")
