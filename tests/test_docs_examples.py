"""The documentation's examples run: the tutorial, Contexts, Live and
Background work (docs/examples/). An example that stops working fails here."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid

import pytest
import requests
from websockets.sync.client import connect

from docs_examples import EXAMPLES, load, run_pytest
from support import SHARED, need_redis
from tether.testing import WebSocketRejected

TUTORIAL = EXAMPLES / "tutorial"


# -- the tutorial --

def test_the_tutorials_first_app_answers() -> None:
    assert load("tutorial/hello.py").app.test_client().get("/").text == "Hello from tether"


def test_the_tutorials_own_tests_pass() -> None:
    run_pytest(TUTORIAL / "test_board.py", TUTORIAL)


def test_the_tutorials_board_under_uvicorn(serve) -> None:  # type: ignore[no-untyped-def]
    """The tutorial's command, for real: the page, a note over a WebSocket seen
    on the SSE board, a reconnecting page resumed after its Last-Event-ID."""
    port = serve([sys.executable, "-m", "uvicorn", "board:app", "--port", "{port}"], TUTORIAL,
                 env={"TETHER_TICK_SECONDS": "3600", "TETHER_REPORT_STEP_SECONDS": "0"})
    base = f"http://127.0.0.1:{port}"
    assert 'new EventSource("/events")' in requests.get(base, timeout=10).text
    with requests.get(f"{base}/events", stream=True, timeout=10) as board:
        assert board.headers["Content-Type"].startswith("text/event-stream")
        with connect(f"ws://127.0.0.1:{port}/notes?name=ann", open_timeout=10) as ws:
            ws.send("first")
            first = json.loads(ws.recv(timeout=10))["posted"]
            ws.send("second")
            second = json.loads(ws.recv(timeout=10))["posted"]
        lines = board.iter_lines(chunk_size=None, decode_unicode=True)
        data = next(line for line in lines if line.startswith("data:") and '"note"' in line)
        assert '"text": "first"' in data
    with requests.get(f"{base}/events", headers={"Last-Event-ID": first}, stream=True, timeout=10) as again:
        resumed = next(line for line in again.iter_lines(chunk_size=None, decode_unicode=True) if line.startswith("id:"))
        assert resumed == f"id: {second}"
    report = requests.post(f"{base}/reports", json={"size": 1}, timeout=10)
    assert report.status_code == 202 and report.json() == {"job": "board.build_report"}


# -- Contexts --

def test_a_generator_reads_request_after_the_view_returned() -> None:
    client = load("contexts/generator.py").app.test_client()
    body = client.post("/jobs", json={"name": "nightly"}).text
    assert body == "data: queued nightly\n\ndata: running nightly\n\ndata: done nightly\n\n"


def test_a_thread_gets_an_error_that_names_app_spawn_and_spawn_works(caplog: pytest.LogCaptureFixture) -> None:
    module = load("contexts/pusher.py")
    failures: list[BaseException] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)  # type: ignore[assignment,misc]
    try:
        client = module.app.test_client()
        assert client.post("/thread/ann").status_code == 202
        deadline = time.monotonic() + 10
        while not failures and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        threading.excepthook = hook
    assert "app.spawn" in str(failures[0]), failures
    with module.app.broadcast.subscribe("user:bob") as messages:
        assert client.post("/spawn/bob", headers={"User-Agent": "docs"}).status_code == 202
        assert next(iter(messages)) == "hello bob from docs"


def test_celery_tasks_see_the_app_g_and_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import _state
    from celery.contrib.testing.worker import start_worker

    monkeypatch.setenv("TETHER_CELERY", json.dumps(
        {"broker_url": "memory://", "result_backend": "cache+memory://", "task_serializer": "json"}))
    previous = _state.default_app
    module = load("contexts/tasks.py")
    try:
        client = module.app.test_client()
        with start_worker(module.celery, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            answer = client.post("/vms/web-1?team=blue", headers={"X-User": "ann"})
            assert answer.status_code == 202
            task_id = answer.json["id"]
            assert module.provision.AsyncResult(task_id).get(timeout=10) == "web-1 for blue"
            events = list(client.get(f"/jobs/{task_id}/events", buffered=False).iter_events())
    finally:
        if previous is not None:
            previous.set_default()
    data = [json.loads(event["data"]) for event in events]
    assert data[0] == {"step": "creating", "by": "ann"} and data[1] == {"step": "starting"}
    assert events[-1]["event"] == "success"


def test_several_apps_in_one_process() -> None:
    module = load("contexts/several_apps.py")
    from werkzeug.test import Client

    client = Client(module.application)
    assert client.get("/").text == "shop: see /"
    assert client.get("/admin/").text == "admin: see /admin/"
    assert module.names_seen() == ["shop", "admin", "shop"]


def test_a_script_publishes_in_the_apps_context() -> None:
    module = load("contexts/script.py")
    board = load("tutorial/board.py").app
    with board.broadcast.subscribe("announcements") as messages:
        message_id = module.announce(board, "maintenance at noon")
        assert next(iter(messages)) == {"text": "maintenance at noon", "from": "script"}
    assert message_id


def test_a_script_without_the_app_reaches_it_through_redis() -> None:
    need_redis()
    module = load("contexts/script.py")
    namespace = f"docs-{uuid.uuid4().hex}"
    app = load("tutorial/hello.py").app
    app.config.update(BROADCAST_URL=SHARED, BROADCAST_NAMESPACE=namespace)
    with app.broadcast.subscribe("announcements") as messages:
        module.announce_without_the_app(SHARED, namespace, "from cron")
        assert next(iter(messages)) == {"text": "from cron"}
    import redis

    redis.Redis.from_url(SHARED).delete(f"tether:{namespace}:broadcast:announcements")


def test_the_contexts_pages_tests_pass() -> None:
    run_pytest(EXAMPLES / "contexts" / "test_contexts.py", EXAMPLES / "contexts")


# -- Live --

@pytest.mark.parametrize("asgi", [False, True])
def test_event_streams_from_sync_and_async_sources(asgi: bool) -> None:
    client = load("live/sse.py").app.test_client(asgi=asgi)
    countdown = list(client.get("/countdown?from=2", buffered=False).iter_events())
    assert [json.loads(event["data"]) for event in countdown] == [{"n": 2}, {"n": 1}]
    clock = list(client.get("/clock", buffered=False).iter_events())
    assert clock[0] == {"event": "tick", "id": "0", "retry": "2000", "data": "tick 0"} and len(clock) == 3


def test_websockets_async_sync_and_refused() -> None:
    client = load("live/websockets.py").app.test_client()
    with client.websocket("/echo?room=kitchen") as ws:
        ws.send("hi")
        assert ws.receive() == "hi from kitchen"
    with client.websocket("/sum") as ws:
        ws.send_json([1, 2])
        assert ws.receive_json() == {"total": 3}
        ws.send_json([4])
        assert ws.receive_json() == {"total": 7}
    with pytest.raises(WebSocketRejected) as refused:
        with client.websocket("/private"):
            pass
    assert refused.value.status == 401
    with client.websocket("/private", headers={"Authorization": "Bearer let-me-in"}) as ws:
        assert ws.receive() == "welcome"
    with pytest.raises(WebSocketRejected) as foreign:
        with client.websocket("/echo", headers={"Origin": "https://evil.example"}):
            pass
    assert foreign.value.status == 403
    with client.websocket("/echo", headers={"Origin": "https://app.example.com"}) as ws:
        ws.send("ok")
        assert ws.receive() == "ok from lobby"


def test_broadcast_history_resume_and_gap() -> None:
    module = load("live/broadcast.py")
    module.app.config["BROADCAST_HISTORY"] = 2
    client = module.app.test_client(asgi=True)
    ids = [client.post("/rooms/a", json={"n": n}).json["id"] for n in range(4)]  # the history keeps n=2, n=3
    resumed = client.get("/rooms/a/events", headers={"Last-Event-ID": ids[2]}, buffered=False)
    first = next(resumed.iter_events())
    resumed.close()
    assert first == {"id": ids[3], "data": '{"n": 3}'}
    gapped = client.get("/rooms/a/events", headers={"Last-Event-ID": ids[0]}, buffered=False)
    events = gapped.iter_events()
    assert next(events)["event"] == "gap"  # n=1 is no longer kept: reload the state
    assert json.loads(next(events)["data"]) == {"n": 2}
    gapped.close()
    with client.websocket("/rooms/b/socket") as ws:
        deadline = time.monotonic() + 10
        while module.app.broadcast.subscriber_count("room:b") == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.post("/rooms/b", json={"text": "hi"})
        assert ws.receive_json() == {"text": "hi"}


def test_rooms_rules_and_the_live_endpoint() -> None:
    module = load("live/rooms.py")
    client = module.app.test_client(asgi=True)
    assert client.get("/live/client.js").status_code == 200
    client.post("/login/7")
    with client.websocket("/live/ws") as ws:
        for channel in ("room:lobby", "user:7", "user:8", "room:a/b"):
            ws.send_json({"join": channel})
        replies = [ws.receive_json() for _ in range(4)]
        assert [(r["event"], r["channel"]) for r in replies] == [
            ("joined", "room:lobby"), ("joined", "user:7"), ("refused", "user:8"), ("refused", "room:a/b"),
        ]
        client.post("/rooms/lobby", data={"text": "hi"})
        message = ws.receive_json()
        assert (message["channel"], message["event"], message["data"]) == ("room:lobby", "chat", {"text": "hi"})
        for channel in ("team:ops", "team:dev"):  # the async rule
            ws.send_json({"join": channel})
        replies = [ws.receive_json() for _ in range(2)]
        assert [(r["event"], r["channel"]) for r in replies] == [("joined", "team:ops"), ("refused", "team:dev")]


def test_presence_on_the_live_endpoint() -> None:
    module = load("live/presence.py")
    ann, bob = module.app.test_client(asgi=True), module.app.test_client(asgi=True)
    ann.post("/login/ann")
    bob.post("/login/bob")
    with ann.lifespan(), ann.websocket("/live/ws") as first:
        first.send_json({"join": "here:lobby"})
        replies = [first.receive_json(), first.receive_json()]  # the reply, and its own join event
        joined = next(reply for reply in replies if reply["event"] == "joined")
        assert joined["members"] == [{"member": "ann", "meta": {"name": "ann"}}]
        with bob.websocket("/live/ws") as second:
            second.send_json({"join": "here:lobby"})
            replies = [second.receive_json(), second.receive_json()]
            joined = next(reply for reply in replies if reply["event"] == "joined")
            assert [m["member"] for m in joined["members"]] == ["ann", "bob"]
            assert first.receive_json()["data"] == {"presence": "join", "member": "bob", "meta": {"name": "bob"}}
            assert ann.get("/rooms/lobby/members").json == {"members": {"ann": {"name": "ann"}, "bob": {"name": "bob"}}}
        assert first.receive_json()["data"]["presence"] == "leave"
    assert ann.get("/rooms/lobby/state").json["last_id"] == "0-0"
    newest = module.app.broadcast.publish("room:lobby", "hi")
    assert ann.get("/rooms/lobby/state").json["last_id"] == newest


def test_a_backend_of_ones_own_serves_its_scheme() -> None:
    module = load("live/backend.py")
    client = module.app.test_client()
    message_id = client.post("/news").json["id"]
    assert module.app.broadcast.backend.log == [("news", message_id)]
    with module.app.broadcast.subscribe("news", last_id="0-0") as replay:
        assert next(iter(replay)) == "hello"

    @module.app.periodic(60, name="digest", across="cluster")
    def digest() -> None: ...

    with pytest.raises(ValueError, match="AuditedBackend, the backend of 'audited://', cannot: .* cannot share turns"):
        module.app.periodic_services["digest"].check()
