"""Server-Sent Events: ``EventStream(source)`` is a response whose source is a
sync or async iterable of ``str``, ``dict``/``list`` (sent as JSON) or
:class:`ServerSentEvent`.

The body is an async generator, under ASGI and WSGI alike (under WSGI it runs
on the worker thread's loop, one thread per client). It sends a comment line
when the source has been idle for ``keepalive`` seconds, so proxies keep the
connection open and a vanished client is noticed. Under ASGI a send that hangs
past ``send_timeout`` ends the stream, as do the client leaving and the server
shutting down. A sync source is iterated on one thread of the app's pool, inside the
request's context: a sync view's own thread, where its teardown runs too.
"""

from __future__ import annotations

import asyncio
import functools
import re
import typing as t
from collections.abc import AsyncIterable
from dataclasses import dataclass

from ..application.wrappers import Response
from ..contexts.ctx import _cv_app
from ..serving.direct import DirectSender, current_sender, encoded_once
from ..serving.lifecycle import ServedApp
from ..serving.race import NextItem, Outcome
from ..serving.threaded import ThreadedIterator
from .broadcast import Delivery, Gap, Subscription
from .channels import refusal

__all__ = ["EventStream", "ServerSentEvent", "gap_event"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
#: What a field's value cannot hold: a line break would end the field, and a
#: browser ignores an ``id`` holding NUL (``lastEventId`` stays the previous one).
_NOT_IN_FIELD = re.compile(r"[\r\n\x00]")


@dataclass
class ServerSentEvent:
    """One event: ``data`` (a ``str``, or anything JSON-encodable), and the
    optional ``event`` name, ``id`` and ``retry`` (milliseconds)."""

    data: t.Any
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def encode(self, dumps: t.Callable[[t.Any], str]) -> str:
        """The event's wire form; multi-line data becomes several ``data:`` lines."""
        lines = []
        for field, value in (("event", self.event), ("id", self.id)):
            if value is not None:
                if _NOT_IN_FIELD.search(str(value)):
                    raise ValueError(f"A Server-Sent Event's {field} cannot contain a line break or NUL: {value!r}")
                lines.append(f"{field}: {value}")
        if self.retry is not None:
            lines.append(f"retry: {int(self.retry)}")
        data = self.data if isinstance(self.data, str) else dumps(self.data)
        lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
        return "\n".join(lines) + "\n\n"


def gap_event(gap: Gap) -> ServerSentEvent:
    """The ``gap`` event that tells a client the history lost messages of a
    channel while it was away (what ``tether-live.js`` reloads on)."""
    return ServerSentEvent({"channel": gap.channel, "last_id": gap.last_id}, event="gap")


class EventStream(Response):
    """A ``text/event-stream`` response of the events ``source`` yields.

    ``keepalive`` (seconds, default ``SSE_KEEPALIVE_INTERVAL``) is the idle time
    after which a comment line is sent; ``send_timeout`` (default
    ``SSE_SEND_TIMEOUT``) the longest a send may hang under ASGI.

    Its headers go out at once, not after the first event (a source may be
    quiet for long): a source that fails sends an ``error`` event, and the
    stream ends, cut off so that the client can tell.

    ``first`` are sent before the source's events. A broadcast subscription
    obeys the app's channel rules (``tether.live.channels``): a channel they
    refuse is left, and a ``refused`` event says so.
    """

    first_chunk_before_status = False

    def __init__(
        self,
        source: t.Iterable[t.Any] | t.AsyncIterable[t.Any],
        *,
        keepalive: float | None = None,
        send_timeout: float | None = None,
        status: int = 200,
        headers: t.Any = None,
        first: t.Sequence[ServerSentEvent] = (),
    ) -> None:
        app = t.cast(ServedApp, _cv_app.get().app)
        # The app's channel rules apply to a subscription made without them:
        # a refused channel is left, and said so first. Async rules, on a
        # loop, are awaited as the stream starts (in the request's context).
        policy = app.serving.source_guard
        guard = None
        if policy is not None and policy.awaits and _on_a_loop():
            guard = functools.partial(policy.aguard, source)
        refused = policy.guard(source) if policy is not None and guard is None else []
        prelude = [*first, *(ServerSentEvent(refusal(channel), event="refused") for channel in refused)]
        if not isinstance(source, AsyncIterable):
            # Made here, so that a sync view's source is iterated on the
            # request's own thread (``ThreadedIterator``).
            source = ThreadedIterator(source, app.serving.executor)
        self.keepalive = keepalive if keepalive is not None else app.config["SSE_KEEPALIVE_INTERVAL"]
        self.send_timeout = send_timeout if send_timeout is not None else app.config["SSE_SEND_TIMEOUT"]
        super().__init__(_frames(source, self.keepalive, app, prelude, guard), status=status, headers=headers, mimetype="text/event-stream")
        self.headers["Cache-Control"] = "no-cache"
        self.headers["X-Accel-Buffering"] = "no"


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _frames(
    source: t.Any,
    keepalive: float,
    app: ServedApp,
    first: list[ServerSentEvent],
    guard: t.Callable[[], t.Awaitable[list[str]]] | None = None,
) -> t.AsyncIterator[bytes]:
    dumps = app.json.dumps
    if guard is not None:
        first += [ServerSentEvent(refusal(channel), event="refused") for channel in await guard()]
    for event in first:
        yield event.encode(dumps).encode()
    # A broadcast subscription's messages carry ids: sent as ``id:``, so that a
    # client that reconnects sends the last one as Last-Event-ID.
    subscription = source if isinstance(source, Subscription) else None
    iterator = subscription.deliveries() if subscription is not None else aiter(source)
    sender = current_sender.get()
    push = None
    if sender is not None and subscription is not None:
        push = _pusher(subscription, sender, dumps)
    items = NextItem(iterator, push=push)
    try:
        while True:
            try:
                item = await items.get(timeout=keepalive)
            except StopAsyncIteration:
                return
            if item is Outcome.TIMED_OUT:
                yield b": keep-alive\n\n"
                continue
            if isinstance(item, Gap):
                item = gap_event(item)
            elif subscription is not None:
                if subscription.many:
                    yield encoded_once(_channels_frame, item, (subscription.last_event_id(), dumps))
                else:
                    yield encoded_once(_channel_frame, item, dumps)
                continue
            elif not isinstance(item, ServerSentEvent):
                item = ServerSentEvent(item)
            yield item.encode(dumps).encode()
    except Exception:
        # The server logs the error and cuts the response; the client is told first.
        yield _FAILED
        raise
    finally:
        await items.aclose()


def _pusher(
    subscription: Subscription, sender: DirectSender, dumps: t.Callable[[t.Any], str]
) -> t.Callable[[Delivery, str], bool]:
    """Sends a message published while the stream waits, from the publish (a
    sink: under the subscription's lock, before the message is taken)."""
    if subscription.many:
        def push_from_channels(delivery: Delivery, id: str) -> bool:
            last_ids = subscription.last_event_id_after(delivery)
            return sender.push(encoded_once(_channels_frame, delivery, (last_ids, dumps)))

        return push_from_channels

    def push(delivery: Delivery, id: str) -> bool:
        return sender.push(encoded_once(_channel_frame, delivery, dumps))

    return push


def _channel_frame(delivery: Delivery, dumps: t.Callable[[t.Any], str]) -> bytes:
    """A single-channel subscription's message: as it is, with its id (and event name, if any)."""
    return ServerSentEvent(delivery.message, event=delivery.event, id=delivery.id).encode(dumps).encode()


def _channels_frame(delivery: Delivery, last_ids_and_dumps: tuple[str, t.Callable[[t.Any], str]]) -> bytes:
    """A multi-channel subscription's message: ``{"channel", "data"}``, a
    ``message`` event unless it has a name, with every channel's last id
    (``tether.live.broadcast.last_ids``)."""
    last_ids, dumps = last_ids_and_dumps
    data = {"channel": delivery.channel, "data": delivery.message}
    return ServerSentEvent(data, event=delivery.event or "message", id=last_ids).encode(dumps).encode()


_FAILED = ServerSentEvent("The event stream failed.", event="error").encode(str).encode()
