"""traced_app served by a real server (``uvicorn traced_server:app``): the
spans it made are read back from ``/spans``."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether.compat import alias_flask

alias_flask()  # before the instrumentation imports flask

import traced_app  # noqa: E402
from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: E402

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
app = traced_app.build(FlaskInstrumentor(), provider)


@app.route("/spans")
def spans() -> list[dict[str, object]]:
    return [traced_app.span_record(span) for span in exporter.get_finished_spans()]
