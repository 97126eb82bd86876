"""A production-style Flask app, on tether through ``alias_flask``: sentry's
FlaskIntegration, OpenTelemetry's instrumentation, prometheus-flask-exporter
and ProxyFix, all at once. What sentry sends and the spans are written as JSON
lines to $SENTRY_FILE and $SPANS_FILE."""

import json
import os

from tether.compat import alias_flask

alias_flask()

import flask  # noqa: E402
import sentry_sdk  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402
from prometheus_flask_exporter import PrometheusMetrics  # noqa: E402
from sentry_sdk.integrations.flask import FlaskIntegration  # noqa: E402
from sentry_sdk.transport import Transport  # noqa: E402
from werkzeug.middleware.proxy_fix import ProxyFix  # noqa: E402


def append(path: str, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record, default=str) + "\n")


class FileTransport(Transport):
    def capture_envelope(self, envelope):
        for item in envelope.items:
            if item.type in ("event", "transaction"):
                append(os.environ["SENTRY_FILE"], item.payload.json)


class FileExporter(SpanExporter):
    def export(self, spans):
        for span in spans:
            append(os.environ["SPANS_FILE"], {"name": span.name, "attributes": dict(span.attributes or {})})
        return SpanExportResult.SUCCESS


sentry_sdk.init(
    dsn="http://public@127.0.0.1:9/1", integrations=[FlaskIntegration()], traces_sample_rate=1.0,
    transport=FileTransport, default_integrations=False,
)
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter()))
trace.set_tracer_provider(provider)

app = flask.Flask(__name__)
FlaskInstrumentor().instrument_app(app)
metrics = PrometheusMetrics(app)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)


def seen() -> dict:
    r = flask.request
    return {
        "scheme": r.scheme, "host": r.host, "remote_addr": r.remote_addr, "script_root": r.script_root,
        "external": flask.url_for("info", n=0, _external=True),
    }


@app.route("/info/<int:n>")
def info(n):
    return seen()


@app.route("/async-info")
async def async_info():
    return seen()


@app.route("/go")
def go():
    return flask.redirect(flask.url_for("info", n=1))


@app.route("/stream")
def stream():
    def generate():
        for _ in range(3):
            yield json.dumps(seen()) + "\n"

    return flask.stream_with_context(generate())


@app.route("/boom")
def boom():
    raise ZeroDivisionError("boom in a view")


@app.websocket("/ws")
async def ws():
    await flask.websocket.accept()
    await flask.websocket.send(json.dumps(seen()))
