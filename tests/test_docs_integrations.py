"""The documentation's examples run: Background work, Coming from Flask and
from other frameworks, Observability, Limits, Serving (docs/examples/)."""

from __future__ import annotations

import ast
import importlib.util
import json
import threading
import time
import uuid

import pytest

from docs_examples import EXAMPLES, ROOT, load, run_pytest, run_python
from support import SHARED, need_redis

COMPARE = EXAMPLES / "compare"


# -- Background work --

def test_spawned_jobs_see_the_request_and_failures_are_signalled() -> None:
    module = load("background/spawn.py")
    app = module.app
    client = app.test_client()
    assert client.post("/images/cat/resize?width=320").json == {"job": f"{module.__name__}.resize"}
    with app.test_request_context("/?width=100"):
        assert app.spawn(module.resize, "dog").result(timeout=10) == "dog@100"
        assert app.spawn(module.warm_cache, "home").result(timeout=10) == "warmed home"
        failed = app.spawn(module.flaky, "owl")
        with pytest.raises(LookupError):
            failed.result(timeout=10)
    deadline = time.monotonic() + 10
    while not app.extensions.get("failed jobs") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.extensions["failed jobs"] == [f"{module.__name__}.flaky: no image owl"]


def test_periodic_services_run_once_by_hand() -> None:
    app = load("background/periodic.py").app
    app.periodic_services["expire carts"].run_once()
    with app.broadcast.subscribe("reports") as reports:
        app.periodic_services["nightly report"].run_once()
        assert "at" in next(iter(reports))
    assert app.extensions["expired"]


def test_a_cluster_wide_service_runs_on_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Served, with BROADCAST_URL on Redis as the page says: the cluster-wide
    report takes the current slot and runs."""
    need_redis()
    namespace = f"docs-{uuid.uuid4().hex}"
    monkeypatch.setenv("TETHER_BROADCAST_URL", SHARED)
    monkeypatch.setenv("TETHER_BROADCAST_NAMESPACE", namespace)
    app = load("background/periodic.py").app
    with app.broadcast.subscribe("reports") as reports:
        lifespan = app.test_client().lifespan()
        lifespan.__enter__()
        assert "at" in next(iter(reports))
        assert app.periodic_services["nightly report"].slot is not None
        # Stopping right after a run (while the service talks to Redis) must not
        # wait for the next slot, 300 s away.
        stopper = threading.Thread(target=lifespan.__exit__, args=(None, None, None))
        stopper.start()
        stopper.join(60)
        assert not stopper.is_alive(), "the cluster-wide service held the shutdown"
    import redis

    client = redis.Redis.from_url(SHARED)
    for key in client.scan_iter(f"tether:{namespace}:*"):
        client.delete(key)


# -- Coming from Flask --

def test_a_flask_app_runs_on_tether_unchanged() -> None:
    out = run_python(
        "import sys, wsgi, tether, flask\n"
        "assert flask.Flask is tether.Tether and isinstance(wsgi.app, tether.Tether)\n"
        "client = wsgi.app.test_client()\n"
        "print(client.get('/hello?name=ann').json['greeting'], client.get('/rows?n=2').data.decode().split())\n",
        EXAMPLES / "flask",
    )
    assert out.strip() == "hello ann ['row', '0', 'row', '1']"


def test_the_flask_projects_tests_run_on_tether_through_its_conftest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("wsgi.py", "test_wsgi_example.py"):
        (tmp_path / name).write_text((EXAMPLES / "flask" / name).read_text())
    (tmp_path / "conftest.py").write_text((EXAMPLES / "flask" / "conftest_example.py").read_text())
    run_pytest(tmp_path / "test_wsgi_example.py", tmp_path)


def test_the_flask_command_script_runs_tether(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = (EXAMPLES / "flask" / "flask_command.py").read_text()
    code = f"import sys; sys.argv = ['flask', '--app', 'wsgi', 'routes']\n{script}"
    try:
        out = run_python(code, EXAMPLES / "flask")
    except AssertionError as e:  # click exits 0 through SystemExit, shown as a failure of -c
        out = str(e)
    assert "/hello" in out and "/rows" in out


# -- Coming from Flask-SocketIO, Quart, Starlette --

def test_the_tether_version_of_the_small_app() -> None:
    client = load("compare/tether_app.py").app.test_client(asgi=True)
    assert client.get("/hello/ann").json == {"hello": "ann"}
    with client.websocket("/echo") as ws:
        ws.send("hi")
        assert ws.receive() == "HI"
    ticks = list(client.get("/ticks?count=2", buffered=False).iter_events())
    assert [json.loads(event["data"]) for event in ticks] == [{"tick": 0}, {"tick": 1}]


def test_the_flask_socketio_version_of_the_small_app() -> None:
    out = run_python(
        "from flask_socketio_app import app, socketio\n"
        "client = app.test_client()\n"
        "print(client.get('/hello/ann').json)\n"
        "print(client.get('/ticks?count=2').data.decode().split())\n"
        "sio = socketio.test_client(app)\n"
        "sio.emit('echo', 'hi')\n"
        "print(sio.get_received()[0]['args'])\n",
        COMPARE,
    )
    assert out.splitlines() == ["{'hello': 'ann'}", "['data:', '{\"tick\":', '0}', 'data:', '{\"tick\":', '1}']", "['HI']"]


@pytest.mark.parametrize("name", ["quart_app.py", "starlette_app.py"])
def test_the_anchors_not_in_the_test_extra_at_least_parse(name: str) -> None:
    ast.parse((COMPARE / name).read_text(), name)


def test_the_starlette_version_runs_where_starlette_is_installed() -> None:
    if importlib.util.find_spec("starlette") is None:
        pytest.skip("starlette is in the bench extra, not the test extra: pip install -e '.[test,bench]'")
    out = run_python(
        "from starlette.testclient import TestClient\nfrom starlette_app import app\n"
        "client = TestClient(app)\nprint(client.get('/hello/ann').json())\n"
        "with client.websocket_connect('/echo') as ws:\n    ws.send_text('hi'); print(ws.receive_text())\n"
        "print(client.get('/ticks?count=1').text.split())\n",
        COMPARE,
    )
    assert out.splitlines() == ["{'hello': 'ann'}", "HI", "['data:', '{\"tick\":', '0}']"]


def test_the_quart_version_runs_where_quart_is_installed() -> None:
    if importlib.util.find_spec("quart") is None:
        pytest.skip("quart is in the bench extra, not the test extra: pip install -e '.[test,bench]'")
    out = run_python(
        "import asyncio\nfrom quart_app import app\n"
        "async def main():\n"
        "    client = app.test_client()\n"
        "    print(await (await client.get('/hello/ann')).get_json())\n"
        "    async with client.websocket('/echo') as ws:\n"
        "        await ws.send('hi'); print(await ws.receive())\n"
        "    print((await (await client.get('/ticks?count=1')).get_data(as_text=True)).split())\n"
        "asyncio.run(main())\n",
        COMPARE,
    )
    assert out.splitlines() == ["{'hello': 'ann'}", "HI", "['data:', '{\"tick\":', '0}']"]


# -- Observability --

def test_logs_errors_traces_and_metrics() -> None:
    out = run_python(
        """
import json, logging
import sentry_sdk
from sentry_sdk.transport import Transport
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import monitored

events = []
class Capture(Transport):
    def capture_envelope(self, envelope):
        events.extend(item.payload.json for item in envelope.items if item.type == "event")

exporter = InMemorySpanExporter()
app = monitored.create_app(exporter)
monitored.init_sentry("http://public@127.0.0.1:9/1", transport=Capture, default_integrations=False)
records = []
logging.getLogger().addHandler(type("H", (logging.Handler,), {"emit": lambda self, r: records.append(r.getMessage())})())
client = app.test_client(asgi=True)
rows = list(client.get("/report?rows=2", buffered=False).iter_events())
assert client.get("/boom").status_code == 500
sentry_sdk.flush()
trace.get_tracer_provider().force_flush()
spans = {s.name: s for s in exporter.get_finished_spans()}
metrics = client.get("/metrics").text
print(json.dumps({
    "rows": len(rows),
    "same trace": spans["row"].context.trace_id == spans["GET /report"].context.trace_id,
    "logged": "row 1 of /report" in records,
    "sentry": [e["exception"]["values"][0]["value"] for e in events],
    "metrics": 'flask_http_request_total{method="GET",status="200"}' in metrics,
}))
""".replace("import monitored", "import monitored\nfrom opentelemetry import trace"),
        EXAMPLES / "observability",
    )
    assert json.loads(out.splitlines()[-1]) == {
        "rows": 2, "same trace": True, "logged": True, "sentry": ["boom"], "metrics": True,
    }


# -- Limits and security --

def test_the_production_limits() -> None:
    app = load("limits/production.py").app
    client = app.test_client(asgi=True)
    host = {"Host": "shop.example.com"}
    assert client.post("/upload", data=b"x" * 10, headers=host).json == {"bytes": 10}
    assert client.post("/upload", data=b"x" * (1024 * 1024 + 1), headers=host).status_code == 413
    assert client.post("/upload", data=b"x", headers={"Host": "evil.example"}).status_code == 400


# -- Serving --

def test_the_lifecycle_and_the_three_kinds_of_views() -> None:
    app = load("serving/lifecycle.py").app
    client = app.test_client(asgi=True)
    with client.lifespan():
        assert client.get("/sync").json == {"pool open": True}
        assert client.post("/json", json={"a": 1}).json == {"got": {"a": 1}}
        assert client.post("/upload", data=b"y" * 100_000).json == {"bytes": 100_000}
    assert app.extensions["pool"] == {"open": False}


def test_every_example_file_is_shown_on_a_page() -> None:
    pages = "\n".join(path.read_text() for path in (ROOT / "docs").rglob("*.md"))
    files = [path for path in EXAMPLES.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    unshown = [str(path.relative_to(EXAMPLES)) for path in files if f"examples/{path.relative_to(EXAMPLES)}" not in pages]
    assert not unshown, f"examples no page includes: {unshown}"


