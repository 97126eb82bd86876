"""Trace context follows the code, as the request context does: spans made in a
streamed body, a spawned job, a Celery task or a WebSocket handler are in the
trace of the request (or connection) that started them. Read from the spans,
with OpenTelemetry's in-memory exporter and a tracer provider per test."""

from __future__ import annotations

import contextvars
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import time
import types
import typing as t
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import tether
from support import ROOT, SHARED, Servers, need_redis
from tether import compat
from tether.contexts.propagation import OWN_PREFIX, carried_context
from tether.serving.tracing import tracing_for
from tether.testing import ConnectionClosed
from tether.tracing import trace_websockets

SERVERS = Path(__file__).parent / "servers"
sys.path.insert(0, str(SERVERS))
import traced_app  # noqa: E402

Span = dict[str, t.Any]


def flask_instrumentor() -> t.Any:
    """opentelemetry-instrumentation-flask's FlaskInstrumentor, imported with
    ``flask`` aliased to tether (as an app does with ``alias_flask()``), without
    leaving the alias on for the other tests of this process."""
    flask_modules = {name: m for name, m in sys.modules.items() if name == "flask" or name.startswith("flask.")}
    sys.modules.pop("opentelemetry.instrumentation.flask", None)
    compat.alias_flask()
    try:
        importlib.import_module("flask.globals")  # read by the instrumentation at each request
        return importlib.import_module("opentelemetry.instrumentation.flask").FlaskInstrumentor
    finally:
        sys.meta_path.remove(compat._finder)
        sys.modules.pop("opentelemetry.instrumentation.flask", None)
        for name in [n for n in sys.modules if n == "flask" or n.startswith("flask.")]:
            del sys.modules[name]
        sys.modules.update(flask_modules)


FlaskInstrumentor = flask_instrumentor()


class Traced:
    """An app of tests/servers/traced_app.py, tracing to an exporter of its own."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.app = traced_app.build(FlaskInstrumentor(), self.provider)

    def spans(self) -> dict[str, Span]:
        """The finished spans by name (each name once)."""
        records = [traced_app.span_record(span) for span in self.exporter.get_finished_spans()]
        by_name = {record["name"]: record for record in records}
        assert len(by_name) == len(records), [r["name"] for r in records]
        return by_name


@pytest.fixture
def traced() -> Traced:
    return Traced()


def assert_children(spans: dict[str, Span], parent: str, children: t.Iterable[str]) -> None:
    """Each of ``children`` is a child of ``parent``, in its trace."""
    for name in children:
        assert spans[name]["trace"] == spans[parent]["trace"], (name, spans)
        assert spans[name]["parent"] == spans[parent]["span"], (name, spans)


CHUNK_SPANS = ("inside 0", "across 0", "inside 1", "across 1")

def stream_cases() -> t.Iterator[t.Any]:
    for protocol in ("wsgi", "asgi"):
        for kind in traced_app.KINDS:
            yield pytest.param(protocol, kind, id=f"{protocol}-{kind}")


@pytest.mark.parametrize(("protocol", "kind"), stream_cases())
def test_a_streamed_bodys_spans_are_children_of_the_request_span(
    traced: Traced, protocol: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = traced.app.test_client(asgi=protocol == "asgi")
    response = client.get(f"/stream/{kind}")
    assert response.status_code == 200 and b"1" in response.data
    spans = traced.spans()
    request_span = f"GET /stream/{kind}"
    assert spans[request_span]["parent"] is None
    assert_children(spans, request_span, CHUNK_SPANS)
    # Each span was made current and left in one Context (else OpenTelemetry logs it).
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")]


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_the_request_span_has_the_responses_status(traced: Traced, protocol: str) -> None:
    """The instrumentation reads ``request`` in its ``start_response``: the
    response is started before the request's teardown, as in Flask."""
    client = traced.app.test_client(asgi=protocol == "asgi")
    response = client.get("/stream/sync")
    assert response.status_code == 200 and response.data == b"0\n1\n"
    assert traced.spans()["GET /stream/sync"]["attributes"].get("http.status_code") == 200


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_a_spawned_jobs_spans_are_children_of_the_span_current_at_spawn(traced: Traced, protocol: str) -> None:
    client = traced.app.test_client(asgi=protocol == "asgi")
    assert client.get("/spawn").data == b"spawned"
    done = traced.app.extensions["jobs_done"]
    assert done.acquire(timeout=10) and done.acquire(timeout=10)
    traced.app.background.shutdown()  # the jobs have ended (their spans too)
    spans = traced.spans()
    assert_children(spans, "GET /spawn", ["spawning"])
    assert_children(spans, "spawning", ["sync job", "async job"])


def test_flask_itself_starts_a_new_trace_for_each_chunk() -> None:
    """The contrast: under Flask the request's span has ended before the body
    is iterated, so each chunk's span is the root of a trace of its own."""
    script = """
import json
from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("flask")
app = Flask(__name__)
FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
@app.route("/stream")
def stream():
    def chunks():
        for n in range(2):
            with tracer.start_as_current_span(f"inside {n}"):
                pass
            yield f"{n}"
    return chunks()
assert app.test_client().get("/stream").data == b"01"
print(json.dumps([
    {"name": s.name, "trace": s.context.trace_id, "parent": s.parent and s.parent.span_id}
    for s in exporter.get_finished_spans()
]))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    spans = {record["name"]: record for record in json.loads(result.stdout)}
    assert set(spans) == {"GET /stream", "inside 0", "inside 1"}
    traces = {record["trace"] for record in spans.values()}
    assert len(traces) == 3 and all(record["parent"] is None for record in spans.values())


def test_tether_is_imported_without_opentelemetry() -> None:
    """OpenTelemetry is optional: importing tether (and serving a WebSocket
    without it) never imports it."""
    code = (
        "import sys; import tether, tether.testing, tether.serving.websocket; "
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr



def test_tethers_own_context_variables_stay_behind_and_the_rest_is_carried() -> None:
    """The rule behind ``carried_context``, checked over the whole package:
    every context variable of tether's modules is named ``tether.*``, so a job
    gets none of the spawner's contexts (request, WebSocket, a stream's sender)
    and everything else of its Context."""
    own: list[contextvars.ContextVar[t.Any]] = []
    for info in pkgutil.walk_packages(tether.__path__, "tether."):
        if info.name != "tether.__main__":
            module = importlib.import_module(info.name)
            own.extend(v for v in vars(module).values() if isinstance(v, contextvars.ContextVar))
    assert len(own) >= 5 and all(var.name.startswith(OWN_PREFIX) for var in own), [v.name for v in own]
    theirs: contextvars.ContextVar[str] = contextvars.ContextVar("library.field")

    def spawner() -> contextvars.Context:
        theirs.set("carried")
        for var in own:
            var.set(object())
        return carried_context()

    carried = contextvars.copy_context().run(spawner)
    assert carried[theirs] == "carried" and not [var for var in own if var in carried]


@pytest.mark.parametrize("path", ["/ws", "/ws-sync"])
def test_websocket_messages_are_spans_of_the_connections_trace(traced: Traced, path: str) -> None:
    trace_websockets(traced.app, traced.provider)
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with traced.app.test_client().websocket(path, headers={"traceparent": caller}) as ws:
        for text in ("a", "b"):
            ws.send(text)
            assert ws.receive() == f"echo {text}"
    records = [traced_app.span_record(span) for span in traced.exporter.get_finished_spans()]
    by_name: dict[str, list[Span]] = {}
    for record in records:
        by_name.setdefault(record["name"], []).append(record)
    [connection] = by_name[f"WEBSOCKET {path}"]
    assert connection["trace"] == "0af7651916cd43dd8448eb211c80319c" and connection["parent"] == "b7ad6b7169203331"
    assert connection["attributes"]["websocket.close_code"] == 1000
    assert {r["trace"] for r in records} == {connection["trace"]}
    received, sent = by_name["WEBSOCKET receive"], by_name["WEBSOCKET send"]
    assert len(received) == 2 and {r["parent"] for r in received} == {connection["span"]}
    assert [r["attributes"]["websocket.message.size"] for r in received] == [1, 1]
    handled = [by_name["handle a"][0], by_name["handle b"][0]]
    assert {r["parent"] for r in handled} == {connection["span"]}
    assert sorted(r["parent"] for r in sent) == sorted(r["span"] for r in handled)


def test_a_failed_handler_marks_its_connections_span(traced: Traced) -> None:
    trace_websockets(traced.app, traced.provider)
    with traced.app.test_client().websocket("/ws-fail") as ws:
        ws.send("x")
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
    assert closed.value.code == 1011
    [span] = [s for s in traced.exporter.get_finished_spans() if s.name == "WEBSOCKET /ws-fail"]
    assert span.status.status_code is StatusCode.ERROR and span.attributes is not None
    assert span.attributes["websocket.close_code"] == 1011
    assert [event.attributes["exception.message"] for event in span.events if event.attributes] == ["the handler failed"]


def test_websocket_spans_are_on_where_flask_instrumentation_is_and_only_there() -> None:
    assert tracing_for(tether.Tether("plain")) is None
    instrumented = tether.Tether("instrumented")
    FlaskInstrumentor().instrument_app(instrumented)
    assert tracing_for(instrumented) is not None


@pytest.mark.parametrize("kind", traced_app.KINDS)
def test_under_uvicorn_a_streamed_bodys_spans_are_children_of_the_request_span(serve: Servers, kind: str) -> None:
    port = serve([sys.executable, "-m", "uvicorn", "--port", "{port}", "traced_server:app"], cwd=SERVERS)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        with client.stream("GET", f"/stream/{kind}") as response:
            assert response.status_code == 200 and "1" in response.read().decode()
        deadline = time.monotonic() + 10
        while True:  # the request's span ends at its teardown, just after the last chunk
            records = [r for r in client.get("/spans").json() if r["name"] != "GET /spans"]
            spans = {record["name"]: record for record in records}
            if f"GET /stream/{kind}" in spans or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert len(spans) == len(records) == 5, records
    assert spans[f"GET /stream/{kind}"]["parent"] is None
    assert_children(spans, f"GET /stream/{kind}", CHUNK_SPANS)


@pytest.fixture(scope="module")
def celery_tasks() -> t.Iterator[tuple[types.ModuleType, Traced, redis.Redis, str]]:
    """traced_celery_app, served by a real worker on a queue of its own, its
    spans on a Redis list of its own; the enqueuing side traced to ``traced``."""
    need_redis()
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    name = uuid.uuid4().hex
    env = {"REDIS_URL": SHARED, "QUEUE": f"trace-{name}", "SPANS_KEY": f"trace-test:{name}"}
    os.environ.update(env)
    module = importlib.import_module("traced_celery_app")
    traced = Traced()
    FlaskInstrumentor().instrument_app(module.app, tracer_provider=traced.provider)
    CeleryInstrumentor().instrument(tracer_provider=traced.provider)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tether", "--app", "traced_celery_app", "celery", "worker", "-P", "prefork", "-c", "1",
         "-Q", env["QUEUE"], "-l", "warning", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
        cwd=SERVERS, env={**os.environ, "PYTHONPATH": f"{SERVERS}{os.pathsep}{ROOT / 'src'}"},
    )
    store = redis.Redis.from_url(SHARED)
    try:
        yield module, traced, store, env["SPANS_KEY"]
    finally:
        worker.terminate()
        worker.wait(30)
        CeleryInstrumentor().uninstrument()
        FlaskInstrumentor.uninstrument_app(module.app)
        store.delete(env["SPANS_KEY"])
        sys.modules.pop("traced_celery_app", None)
        for key in env:
            os.environ.pop(key, None)


@pytest.mark.parametrize("protocol", ["wsgi", "asgi"])
def test_a_celery_tasks_span_is_in_the_trace_of_the_request_that_sent_it(
    celery_tasks: tuple[types.ModuleType, Traced, redis.Redis, str], protocol: str
) -> None:
    module, traced, store, key = celery_tasks
    traced.exporter.clear()
    store.delete(key)
    task_id = module.app.test_client(asgi=protocol == "asgi").get("/enqueue").get_data(as_text=True)
    assert module.celery.AsyncResult(task_id).get(timeout=60) == "worked"
    deadline = time.monotonic() + 30
    while store.llen(key) < 2:  # the run span ends just after the result is stored
        assert time.monotonic() < deadline, store.lrange(key, 0, -1)
        time.sleep(0.05)
    worker = {record["name"]: record for record in map(json.loads, store.lrange(key, 0, -1))}
    spans = {**traced.spans(), **worker}
    assert set(spans) == {
        "GET /enqueue", "apply_async/traced_celery_app.work", "run/traced_celery_app.work", "task work",
    }, spans
    assert spans["GET /enqueue"]["parent"] is None
    assert_children(spans, "GET /enqueue", ["apply_async/traced_celery_app.work"])
    assert_children(spans, "apply_async/traced_celery_app.work", ["run/traced_celery_app.work"])
    assert_children(spans, "run/traced_celery_app.work", ["task work"])
