"""OpenTelemetry spans for WebSockets: one span per connection, from the
handshake to the close, and in it one span per message received or sent.

HTTP requests get their span from opentelemetry-instrumentation-flask; a
WebSocket is not a request it knows. So tether makes these itself, for an app
where ``FlaskInstrumentor().instrument_app(app)`` ran (spans go to the global
tracer provider), or after ``tether.tracing.trace_websockets(app, provider)``.
The connection's span is current in the handler's Context, so the spans the
handler makes are in the connection's trace; a ``traceparent`` header on the
handshake makes the connection part of the caller's trace.

OpenTelemetry is imported only for an app where tracing is on; elsewhere a
connection costs one dictionary look-up and each message an attribute test.
"""

from __future__ import annotations

import contextlib
import typing as t

from ..application.pipeline import Application
from ..application.wrappers import Request

if t.TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = ["ConnectionTrace", "WebSocketTracing", "trace_websockets", "tracing_for"]

#: Where ``trace_websockets`` keeps an app's tracing, in ``app.extensions``.
EXTENSION = "tether.websocket_tracing"


class ConnectionTrace:
    """The spans of one connection: its own, and one per message in it."""

    __slots__ = ("_tracer", "span")

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self._tracer = tracer
        self.span = span

    def received(self, data: str | bytes) -> None:
        """A message came: a span at its arrival, a child of the current one."""
        self._tracer.start_span("WEBSOCKET receive", attributes=_message_attributes(data)).end()

    def sending(self, data: str | bytes) -> t.ContextManager[Span]:
        """A span around the send of one message (the time the client takes to take it)."""
        return self._tracer.start_as_current_span("WEBSOCKET send", attributes=_message_attributes(data))

    def closed(self, code: int) -> None:
        self.span.set_attribute("websocket.close_code", code)

    def failed(self, error: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode  # optional: imported where tracing is on

        self.span.record_exception(error)
        self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def _message_attributes(data: str | bytes) -> dict[str, t.Any]:
    return {
        "websocket.message.type": "text" if isinstance(data, str) else "binary",
        "websocket.message.size": len(data),
    }


class WebSocketTracing:
    """Makes the spans of an app's connections, with the tracer of ``provider``
    (by default the global one)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        from opentelemetry import trace  # optional: imported where tracing is on

        self._tracer = trace.get_tracer("tether.websocket", tracer_provider=provider)

    @contextlib.contextmanager
    def connection(self, request: Request) -> t.Iterator[ConnectionTrace]:
        """The connection's span, current inside (the handler runs there);
        named after the URL rule once matched, as the HTTP spans are."""
        from opentelemetry import propagate, trace  # optional: imported where tracing is on

        parent = propagate.extract(request.headers)
        attributes = {"url.path": request.path, "url.scheme": request.scheme, "server.address": request.host}
        with self._tracer.start_as_current_span(
            f"WEBSOCKET {request.path}", context=parent, kind=trace.SpanKind.SERVER, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        ) as span:
            try:
                yield ConnectionTrace(self._tracer, span)
            finally:
                rule = request.url_rule
                if rule is not None:
                    span.update_name(f"WEBSOCKET {rule.rule}")
                    span.set_attribute("http.route", rule.rule)


_automatic: WebSocketTracing | None = None


def tracing_for(app: Application) -> WebSocketTracing | None:
    """The app's WebSocket tracing, or ``None`` where it is off."""
    global _automatic
    tracing = app.extensions.get(EXTENSION)
    if tracing is not None or not getattr(app, "_is_instrumented_by_opentelemetry", False):
        return tracing
    if _automatic is None:  # FlaskInstrumentor's mark: the global tracer provider, like its own spans
        _automatic = WebSocketTracing()
    return _automatic


def trace_websockets(app: Application, tracer_provider: TracerProvider | None = None) -> None:
    """Give ``app``'s WebSocket connections and messages spans, made with
    ``tracer_provider`` (by default the global one). Needed only where the app
    is not instrumented by ``FlaskInstrumentor().instrument_app(app)``, or where
    the spans go to a provider of their own."""
    app.extensions[EXTENSION] = WebSocketTracing(tracer_provider)
