"""``tether.tracing``: OpenTelemetry spans for WebSocket connections and their
messages (see ``tether.serving.tracing``); HTTP requests get theirs from
opentelemetry-instrumentation-flask."""

from .serving.tracing import trace_websockets

__all__ = ["trace_websockets"]
