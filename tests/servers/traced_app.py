"""An app whose streamed bodies, spawned jobs and WebSocket handler make spans,
built around a given FlaskInstrumentor and tracer provider: by tests/test_tracing.py
in-process, and by traced_server.py for a real server."""

from __future__ import annotations

import asyncio
import threading
import typing as t
from collections.abc import AsyncIterator, Iterator

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from tether import EventStream, Tether, websocket

#: The body kinds of /stream/<kind>.
KINDS = ("sync", "async", "events_sync", "events_async")


def span_record(span: ReadableSpan) -> dict[str, t.Any]:
    """What the tests read of a finished span: names and ids (hex)."""
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "trace": format(context.trace_id, "032x"),
        "span": format(context.span_id, "016x"),
        "parent": format(span.parent.span_id, "016x") if span.parent is not None else None,
        "attributes": dict(span.attributes or {}),
    }


def build(instrumentor: t.Any, provider: TracerProvider) -> Tether:
    """The app, instrumented with ``instrumentor`` (FlaskInstrumentor, imported
    with ``flask`` aliased to tether) and tracing to ``provider``."""
    app = Tether(__name__)
    instrumentor.instrument_app(app, tracer_provider=provider)
    tracer = provider.get_tracer("traced_app")
    jobs_done = threading.Semaphore(0)
    app.extensions["jobs_done"] = jobs_done

    def chunks() -> Iterator[str]:
        # A span made and ended within a chunk, then one open across the yield.
        for n in range(2):
            with tracer.start_as_current_span(f"inside {n}"):
                pass
            with tracer.start_as_current_span(f"across {n}"):
                yield f"{n}\n"

    async def async_chunks() -> AsyncIterator[str]:
        for n in range(2):
            await asyncio.sleep(0)
            with tracer.start_as_current_span(f"inside {n}"):
                pass
            with tracer.start_as_current_span(f"across {n}"):
                yield f"{n}\n"

    @app.route("/stream/sync")
    def stream_sync() -> t.Any:
        return chunks()

    @app.route("/stream/async")
    async def stream_async() -> t.Any:
        return async_chunks()

    @app.route("/stream/events_sync")
    def events_sync() -> t.Any:
        return EventStream(chunks())

    @app.route("/stream/events_async")
    async def events_async() -> t.Any:
        return EventStream(async_chunks())

    def sync_job() -> None:
        with tracer.start_as_current_span("sync job"):
            jobs_done.release()

    async def async_job() -> None:
        await asyncio.sleep(0)
        with tracer.start_as_current_span("async job"):
            jobs_done.release()

    @app.route("/spawn")
    def spawn() -> str:
        with tracer.start_as_current_span("spawning"):
            app.spawn(sync_job)
            app.spawn(async_job)
        return "spawned"

    @app.websocket("/ws")
    async def echo() -> None:
        async for message in websocket:
            with tracer.start_as_current_span(f"handle {message!s}"):
                await websocket.send(f"echo {message!s}")

    @app.websocket("/ws-sync")
    def echo_sync() -> None:
        for message in websocket:
            with tracer.start_as_current_span(f"handle {message!s}"):
                websocket.send(f"echo {message!s}")

    @app.websocket("/ws-fail")
    async def fail() -> None:
        await websocket.receive()
        raise RuntimeError("the handler failed")

    return app
