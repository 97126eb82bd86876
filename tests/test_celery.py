"""Celery with contexts, against a real worker process and the real Redis
(broker, result backend and broadcast): tests/servers/celery_app.py."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from support import SHARED, need_redis

SERVERS = Path(__file__).parent / "servers"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def tasks() -> Iterator[types.ModuleType]:
    """The app module, imported here (to enqueue and to read results) and
    served by a worker started with ``tether celery worker``, on a queue and a
    log key of this module's own."""
    need_redis()
    name = uuid.uuid4().hex
    env = {"REDIS_URL": SHARED, "QUEUE": f"test-{name}", "LOG_KEY": f"celery-test:{name}"}
    os.environ.update(env)
    sys.path.insert(0, str(SERVERS))
    module = importlib.import_module("celery_app")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tether", "--app", "celery_app", "celery", "worker", "-P", "prefork", "-c", "2",
         "-Q", env["QUEUE"], "-l", "warning", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
        cwd=SERVERS, env={**os.environ, "PYTHONPATH": f"{SERVERS}{os.pathsep}{ROOT / 'src'}"},
    )
    try:
        module.log.delete(env["LOG_KEY"])
        module.hooks.delay().get(timeout=60)  # the worker is up
        entries(module, teardowns=1)
        yield module
    finally:
        worker.terminate()
        worker.wait(30)
        module.log.delete(env["LOG_KEY"])
        sys.path.remove(str(SERVERS))
        for key in env:
            os.environ.pop(key, None)


def entries(tasks: types.ModuleType, teardowns: int) -> list[str]:
    """The log, once it holds ``teardowns`` teardowns: a result is ready
    before its execution's last hooks and teardown have run."""
    deadline = time.monotonic() + 30
    while True:
        log = [entry.decode() for entry in tasks.log.lrange(tasks.LOG, 0, -1)]
        if log.count("teardown") >= teardowns:
            return log
        assert time.monotonic() < deadline, log
        time.sleep(0.02)


def log_of(tasks: types.ModuleType, action: object, teardowns: int = 1) -> list[str]:
    """What the tasks recorded while ``action()`` ran, up to its last teardown."""
    tasks.log.delete(tasks.LOG)
    action()  # type: ignore[operator]
    return entries(tasks, teardowns)


def test_the_run_every_hook_and_signal_run_in_the_app_context_torn_down_once(tasks: types.ModuleType) -> None:
    log = log_of(tasks, lambda: tasks.hooks.delay().get(timeout=30))
    assert log == [
        "task_prerun:app", "run:app", "on_success:app", "after_return:app", "task_postrun:app", "teardown",
    ]


def test_a_retried_task_gets_a_fresh_context_per_execution(tasks: types.ModuleType) -> None:
    log = log_of(tasks, lambda: tasks.hooks.delay(retry=True).get(timeout=30), teardowns=2)
    assert log.count("teardown") == 2 and log.count("run:app") == 2
    assert "on_retry:app" in log and log[-1] == "teardown"
    assert all(e.endswith(":app") for e in log if e != "teardown")


def test_a_failure_runs_its_hooks_and_signals_in_the_app_context(tasks: types.ModuleType) -> None:
    def fail() -> None:
        with pytest.raises(ValueError):
            tasks.hooks.delay(fail=True).get(timeout=30)

    log = log_of(tasks, fail)
    assert {"on_failure:app", "task_failure:app", "after_return:app"} <= set(log)
    assert log.count("teardown") == 1 and all(e.endswith(":app") for e in log if e != "teardown")


#: Credentials a request may hold: none reaches the broker (CELERY_CARRY_HEADERS is an allow-list).
CREDENTIALS = {
    "Cookie": "session=secret", "Authorization": "Bearer secret", "Proxy-Authorization": "Basic c2VjcmV0",
    "X-Api-Key": "secret", "X-Auth-Token": "secret",
}
#: The default allow-list.
SAFE = {"Accept": "text/html", "Accept-Language": "fr", "User-Agent": "probe/1", "X-Request-ID": "req-1"}


def test_the_enqueuing_request_and_named_g_values_are_carried(tasks: types.ModuleType) -> None:
    client = tasks.app.test_client()
    response = client.post(
        "/enqueue/carried?x=1&x=2&y=3", json={"a": [1, 2]}, headers={"X-Test": "yes", **CREDENTIALS, **SAFE}
    )
    result = tasks.celery.AsyncResult(response.get_json()["id"]).get(timeout=30)
    assert result == {
        "method": "POST",
        "path": "/enqueue/carried",
        "args": {"x": "1", "y": "3"},
        "json": {"a": [1, 2]},
        "form": {},
        "header": "yes",
        "headers": {"x-test": "yes", "content-type": "application/json", **{k.lower(): v for k, v in SAFE.items()}},
        "g": {"user_id": "u-42", "request_id": "r-7"},
    }
    form = client.post("/enqueue/carried", data={"name": "vm-1"})
    assert tasks.celery.AsyncResult(form.get_json()["id"]).get(timeout=30)["form"] == {"name": "vm-1"}


def test_a_shared_task_runs_in_the_app_context(tasks: types.ModuleType) -> None:
    response = tasks.app.test_client().post("/enqueue/shared")
    assert tasks.celery.AsyncResult(response.get_json()["id"]).get(timeout=30) == tasks.app.name


def test_passing_a_context_proxy_fails_at_delay_with_what_to_pass(tasks: types.ModuleType) -> None:
    from tether import g, request

    with tasks.app.test_request_context("/?q=1"):
        with pytest.raises(TypeError, match=r"request\.get_json\(\)"):
            tasks.hooks.delay(request)
        with pytest.raises(TypeError, match="CELERY_CARRY_G"):
            tasks.hooks.delay(fail=g)
        for nested in ([1, [request]], {"k": {"deeper": (request,)}}, {request: 1}):
            with pytest.raises(TypeError, match=r"pass the values it needs"):
                tasks.hooks.delay(nested)
        looped: list[object] = []
        looped.append(looped)
        with pytest.raises(TypeError, match="CELERY_CARRY_G"):
            tasks.hooks.delay([looped, {"g": g}])


def test_a_credential_never_reaches_the_broker(tasks: types.ModuleType) -> None:
    """What the message would hold: no credential value anywhere in it."""
    from tether.live.tasks.carried import carry

    with tasks.app.test_request_context("/", headers={**CREDENTIALS, **SAFE}):
        carried = carry(tasks.app, "carried", carry_request=True)
    assert carried is not None
    assert {k.lower(): v for k, v in carried["request"]["headers"]} == {k.lower(): v for k, v in SAFE.items()}
    assert "secret" not in json.dumps(carried) and "c2VjcmV0" not in json.dumps(carried)


def test_a_body_too_large_to_carry_fails_at_delay(tasks: types.ModuleType) -> None:
    with tasks.app.test_request_context("/", method="POST", data="x" * (70 * 1024), content_type="text/plain"):
        with pytest.raises(ValueError, match="CELERY_CARRY_MAX_BYTES"):
            tasks.carried.delay()


def test_called_or_applied_inside_the_apps_context_the_task_reuses_it(tasks: types.ModuleType) -> None:
    from tether import g

    def inside() -> None:
        with tasks.app.app_context():
            g.session = session = object()
            assert tasks.hooks.apply().get() == "done"
            assert tasks.hooks() == "done"
            assert g.session is session  # the caller's context was not torn down under it
            tasks.log.rpush(tasks.LOG, "leaving")

    log = log_of(tasks, inside)
    assert log[-2:] == ["leaving", "teardown"] and log.count("teardown") == 1
    alone = log_of(tasks, lambda: tasks.hooks())
    assert alone == ["run:app", "teardown"]  # outside any context: one of its own


def events_of(tasks: types.ModuleType, task_id: str, last_id: str | None = None) -> list[dict[str, str]]:
    headers = {"Last-Event-ID": last_id} if last_id else {}
    response = tasks.app.test_client().get(f"/tasks/{task_id}/events", headers=headers, buffered=False)
    return list(response.iter_events())


def test_a_late_subscriber_gets_the_whole_story_then_the_result(tasks: types.ModuleType) -> None:
    result = tasks.reports.delay(3)
    assert result.get(timeout=30) == 30
    events = events_of(tasks, result.id)
    assert [(e.get("event"), json.loads(e["data"])) for e in events] == [
        ("progress", {"step": 1, "of": 3}),
        ("progress", {"step": 2, "of": 3}),
        ("progress", {"step": 3, "of": 3}),
        ("success", 30),
    ]
    resumed = events_of(tasks, result.id, last_id=events[1]["id"])
    assert [json.loads(e["data"]) for e in resumed] == [{"step": 3, "of": 3}, 30]
    ttl = redis.Redis.from_url(SHARED).ttl(f"tether:{tasks.app.broadcast.namespace}:broadcast:task:{result.id}")
    assert 0 < ttl <= tasks.app.config["CELERY_PROGRESS_TTL"]


def test_a_failure_ends_the_story_with_a_safe_message(tasks: types.ModuleType) -> None:
    result = tasks.hooks.delay(fail=True)
    with pytest.raises(ValueError):
        result.get(timeout=30)
    events = events_of(tasks, result.id)
    assert events[-1]["event"] == "failure" and events[-1]["data"] == '{"message": "The task failed."}'
    assert "secret" not in str(events)


def test_a_revoked_task_ends_its_story_as_revoked(tasks: types.ModuleType) -> None:
    result = tasks.sleeps.apply_async((0,), countdown=2)
    result.revoke()
    deadline = time.monotonic() + 30
    while result.state != "REVOKED":
        assert time.monotonic() < deadline, result.state
        time.sleep(0.1)
    assert events_of(tasks, result.id)[-1]["event"] == "revoked"


def test_tasks_run_in_process_through_real_serialization_with_celerys_test_worker() -> None:
    """The documented helper: Celery's own embedded worker, on the in-memory
    transport, runs the message path (JSON, headers, tracer) in this process."""
    from celery import _state
    from celery.contrib.testing.worker import start_worker

    from tether import Tether, current_app, g, request
    from tether.celery import init_celery

    app = Tether("in_process")
    app.config.update(
        CELERY={"broker_url": "memory://", "result_backend": "cache+memory://", "task_serializer": "json"},
        CELERY_CARRY_G=["user_id"],
    )
    previous = _state.default_app
    celery = init_celery(app)  # it becomes the default app: set back below, for the other tests' shared tasks

    @celery.task(carry_request=True)
    def echo(value: object) -> dict[str, object]:
        return {"value": value, "app": current_app.name, "user": g.get("user_id"), "q": request.args.get("q")}

    with start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        with app.test_request_context("/?q=1"):
            g.user_id = 7
            result = echo.delay({"n": 1})
        assert result.get(timeout=10) == {"value": {"n": 1}, "app": "in_process", "user": 7, "q": "1"}
    if previous is not None:
        previous.set_default()
