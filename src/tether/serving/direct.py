"""Sending a message from outside the task that owns the connection.

A message fanned out to thousands of subscribers usually travels as: wake the
subscriber's task (a future, a loop callback), resume its chain of generators,
send. :class:`DirectSender` lets the publisher's own call send it instead,
while the subscriber's task sits in one long wait: no future, callback or task
step per message, and nothing allocated that outlives the delivery (so a
fan-out leaves no new long-lived objects for the garbage collector to scan).

The ASGI ``send`` is a coroutine; :meth:`DirectSender.push` runs it at once.
It nearly always finishes without waiting (the server writes to its
transport); when it must wait (the client reads slowly, the transport is
paused) the rest of it continues in a task, and pushes are refused until it is
done, so the caller queues the message for the owning task and order is kept.

A streamed body learns its sender through :data:`current_sender`, which the
task sending the body sets around its iteration.
"""

from __future__ import annotations

import asyncio
import contextvars
import types
import typing as t

__all__ = ["DirectSender", "current_sender", "encoded_once"]

T = t.TypeVar("T")


class DirectSender:
    """Runs ``send(message)`` from any code on the connection's loop."""

    __slots__ = ("_send", "_wrap", "_finishing", "error")

    def __init__(self, send: t.Callable[[t.Any], t.Awaitable[None]], wrap: t.Callable[[t.Any], t.Any]) -> None:
        self._send = send
        #: Makes the ASGI message of what is pushed (a body chunk, a WebSocket text).
        self._wrap = wrap
        self._finishing: asyncio.Task[None] | None = None
        #: What a direct send raised (the client went away); the owner raises it.
        self.error: BaseException | None = None

    def push(self, data: t.Any) -> bool:
        """Send ``data`` now; ``False`` (nothing sent) while an earlier send is
        still waiting or after one failed: queue it for the owner, which calls
        :meth:`flush` before sending anything itself."""
        if self.error is not None or (self._finishing is not None and not self._finishing.done()):
            return False
        coro = self._send(self._wrap(data)).__await__()
        try:
            waiting_for = coro.send(None)
        except StopIteration:
            return True
        except Exception as e:
            self.error = e  # queued instead, the message wakes the owner, whose flush raises this
            return False
        self._finishing = asyncio.get_running_loop().create_task(_finish(coro, waiting_for))
        return True

    async def flush(self) -> None:
        """Wait for a direct send still under way; raise what a direct send raised."""
        if self._finishing is not None:
            finishing, self._finishing = self._finishing, None
            await finishing
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """The owner is done: stop a send still waiting, or collect its outcome."""
        finishing, self._finishing = self._finishing, None
        if finishing is not None and not finishing.done():
            finishing.cancel()
        elif finishing is not None and not finishing.cancelled():
            finishing.exception()


@types.coroutine
def _finish(coro: t.Generator[t.Any, t.Any, t.Any], waiting_for: t.Any) -> t.Generator[t.Any, t.Any, None]:
    """Drive the rest of a send that started outside any task: hand what it
    waits for to the task, pass back what the task resumes it with."""
    while True:
        try:
            resumed = yield waiting_for
        except BaseException as e:
            try:
                waiting_for = coro.throw(e)
            except StopIteration:
                return
        else:
            try:
                waiting_for = coro.send(resumed)
            except StopIteration:
                return


#: The direct sender of the streamed body being iterated here, if its server allows one.
current_sender: contextvars.ContextVar[DirectSender | None] = contextvars.ContextVar("tether.current_sender", default=None)


#: The last ``encoded_once``: ``(message, encode, arg, result)``.
_last: tuple[t.Any, t.Any, t.Any, t.Any] = (None, None, None, None)


def encoded_once(encode: t.Callable[[t.Any, t.Any], T], message: t.Any, arg: t.Any) -> T:
    """``encode(message, arg)``, reusing the last result while the same message
    (the same object) comes again with an equal ``arg``: a fanned-out message
    reaches its subscribers one after the other, so it is encoded once rather
    than once for each. (The tuple is swapped whole, so threads may share it.)"""
    global _last
    last = _last
    if last[0] is message and last[1] is encode and last[2] == arg:
        return t.cast(T, last[3])
    result = encode(message, arg)
    _last = (message, encode, arg, result)
    return result
