"""Logs, errors to Sentry, traces to OpenTelemetry and metrics for Prometheus,
on one app. The instrumentations are Flask's, so they import flask: alias it first."""

import logging.config
import os

from tether.compat import alias_flask

alias_flask()

import sentry_sdk  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.instrumentation.celery import CeleryInstrumentor  # noqa: E402
from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter  # noqa: E402
from prometheus_flask_exporter import PrometheusMetrics  # noqa: E402
from sentry_sdk.integrations.flask import FlaskIntegration  # noqa: E402

from tether import EventStream, Tether, request  # noqa: E402


def init_logging(level: str = "INFO") -> None:
    """One line per record on stderr, where the process manager collects it."""
    logging.config.dictConfig({
        "version": 1,
        "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
        "root": {"level": level, "handlers": ["stderr"]},
    })


def init_sentry(dsn: str | None, **options) -> None:
    """Errors with their request, and performance traces (a sample of them)."""
    sentry_sdk.init(dsn=dsn, integrations=[FlaskIntegration()], traces_sample_rate=0.1, **options)


def init_tracing(app: Tether, exporter: SpanExporter) -> TracerProvider:
    """Request spans (WSGI and ASGI), WebSocket spans, Celery task spans."""
    provider = TracerProvider(resource=Resource.create({"service.name": app.name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    FlaskInstrumentor().instrument_app(app)
    CeleryInstrumentor().instrument()
    return provider


def create_app(exporter: SpanExporter | None = None) -> Tether:
    init_logging(os.environ.get("LOG_LEVEL", "INFO"))
    init_sentry(os.environ.get("SENTRY_DSN"))  # no DSN: nothing is sent
    app = Tether(__name__)
    init_tracing(app, exporter or ConsoleSpanExporter())
    PrometheusMetrics(app)  # GET /metrics
    tracer = trace.get_tracer(__name__)

    @app.get("/report")
    def report() -> EventStream:
        def rows():
            for n in range(int(request.args.get("rows", 2))):
                with tracer.start_as_current_span("row"):  # in the request's trace
                    app.logger.info("row %s of %s", n, request.path)
                    yield {"row": n}

        return EventStream(rows())

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    return app
