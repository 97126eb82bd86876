"""examples/progress: seed 000's VM jobs on Celery, against a real worker and
the real Redis, and in Chromium through a reload mid-job."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import free_port, wait_for_port
from test_browser import FLAGS, chromium_path  # noqa: F401  (a fixture)
from test_redis_broadcast import SHARED, reachable

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "progress" / "app.py"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[types.ModuleType, dict[str, str]]]:
    """The example app, imported here, with a worker of its own started by
    ``tether celery worker`` on a queue of this module's own."""
    if not reachable(SHARED):
        if os.environ.get("TETHER_REQUIRE_SERVICES") == "1":
            pytest.fail("Redis is not reachable on 127.0.0.1:6379, and TETHER_REQUIRE_SERVICES=1.")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (the example's jobs run on Celery over Redis).")
    queue = f"test-progress-{uuid.uuid4().hex}"
    env = {
        "TETHER_REDIS_URL": SHARED,
        "TETHER_DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('progress')}/progress.db",
        "TETHER_STEP_DELAY": "0.3",
        "TETHER_CELERY": json.dumps(
            {"broker_url": SHARED, "result_backend": SHARED, "task_default_queue": queue, "task_acks_late": True}
        ),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    spec = importlib.util.spec_from_file_location("progress_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tether", "--app", str(EXAMPLE), "celery", "worker", "-P", "threads", "-c", "4",
         "-Q", queue, "-l", "warning", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    try:
        yield module, env
    finally:
        worker.terminate()
        worker.wait(30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def signed_in(module: types.ModuleType, name: str) -> object:
    client = module.app.test_client()
    client.post("/", data={"user": name})
    return client


def test_bad_input_gets_a_400_saying_what_is_wrong_and_starts_nothing(
    example: tuple[types.ModuleType, dict[str, str]],
) -> None:
    module, _ = example
    client = signed_in(module, "ann")
    cases = [
        ({"name": "a"}, "Missing or empty: node, app_type."),
        ({"name": "a", "node": " ", "app_type": "x"}, "Missing or empty: node."),
        ({"name": "a" * 61, "node": "n", "app_type": "x"}, "Longer than 60 characters: name."),
        (["not", "an", "object"], "The body must be a JSON object."),
    ]
    for body, message in cases:
        response = client.post("/api/vm/new", json=body)  # type: ignore[attr-defined]
        assert response.status_code == 400 and response.get_json() == {"error": message}
    assert client.post("/api/vm/new", data="{", content_type="application/json").status_code == 400  # type: ignore[attr-defined]
    assert client.get("/api/jobs").get_json() == {"jobs": []}  # type: ignore[attr-defined]
    assert module.app.test_client().post("/api/vm/save", json={"device_id": "d"}).status_code == 401


def test_a_job_runs_in_the_worker_commits_there_and_only_its_owner_may_watch(
    example: tuple[types.ModuleType, dict[str, str]],
) -> None:
    module, _ = example
    client = signed_in(module, "ann")
    started = client.post("/api/vm/new", json={"name": "HK_003", "node": "HK_061", "app_type": "Carousell"})  # type: ignore[attr-defined]
    assert started.status_code == 202
    job_id = started.get_json()["id"]
    events = list(client.get(f"/api/jobs/{job_id}/events", buffered=False).iter_events())  # type: ignore[attr-defined]
    assert [e["event"] for e in events] == ["progress", "progress", "progress", "success"]
    assert "creating VM account HK_003" in json.loads(events[0]["data"])["message"]
    assert json.loads(events[-1]["data"]) == "VM account HK_003 created"
    with module.app.app_context():
        db = module.get_db()
        account = db.get(module.Account, "HK_003")
        assert account is not None and account.node == "HK_061"  # committed by the worker
        assert db.scalars(select(module.Job.state).where(module.Job.id == job_id)).one() == "done"
    assert client.get("/api/jobs").get_json()["jobs"] == [{"id": job_id, "action": "new", "state": "done"}]  # type: ignore[attr-defined]
    assert signed_in(module, "bob").get(f"/api/jobs/{job_id}/events").status_code == 404  # type: ignore[attr-defined]


def test_the_page_resumes_a_job_after_a_reload_in_chromium(
    example: tuple[types.ModuleType, dict[str, str]], chromium_path: str  # noqa: F811
) -> None:
    from playwright.sync_api import sync_playwright

    _, env = example
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tether", "--app", str(EXAMPLE), "run", "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"http://127.0.0.1:{port}/")
                page.fill("input[name=user]", "cara")
                page.click("button")
                page.click("#job button")
                page.wait_for_selector(".job p.progress")  # the job has started
                page.reload()  # mid-job: the page follows it again
                page.wait_for_selector(".job[data-state=done]", timeout=30_000)
                lines = page.locator(".job").first.locator("p").all_text_contents()
                assert len(lines) == 4 and "creating VM account" in lines[0] and "created" in lines[-1]
                assert errors == []
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(30)
