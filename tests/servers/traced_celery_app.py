"""A tether app with a Celery task that makes a span, for tests/test_tracing.py.
The worker (``tether --app traced_celery_app celery worker``) traces with
opentelemetry-instrumentation-celery and pushes its finished spans, as JSON,
onto the Redis list $SPANS_KEY; the enqueuing side is instrumented by the test."""

from __future__ import annotations

import json
import os
import typing as t

import redis
from celery import signals
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from traced_app import span_record

from tether import Tether
from tether.celery import init_celery

URL = os.environ["REDIS_URL"]

app = Tether(__name__)
app.config.update(CELERY={"broker_url": URL, "result_backend": URL, "task_default_queue": os.environ["QUEUE"]})
celery = init_celery(app)
provider = TracerProvider()  # the worker's; spans made in the test process go to the test's


class RedisExporter(SpanExporter):
    """Finished spans onto a Redis list, for the test process to read."""

    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(URL)

    def export(self, spans: t.Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self.redis.rpush(os.environ["SPANS_KEY"], json.dumps(span_record(span), default=str))
        return SpanExportResult.SUCCESS


@signals.worker_process_init.connect(weak=False)
def trace_this_worker(**_: object) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    provider.add_span_processor(SimpleSpanProcessor(RedisExporter()))
    CeleryInstrumentor().instrument(tracer_provider=provider)


@celery.task
def work() -> str:
    with provider.get_tracer("traced_celery_app").start_as_current_span("task work"):
        return "worked"


@app.route("/enqueue")
def enqueue() -> str:
    return str(work.delay().id)
