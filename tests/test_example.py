"""examples/progress: seed 000's VM jobs on Celery, against a real worker and
the real Redis; its API's errors, all JSON, through the test client and
uvicorn; and in Chromium, its labelled form and a reload mid-job."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import subprocess
import sys
import types
import typing as t
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from support import FLAGS, SHARED, free_port, need_redis, wait_for_port

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "progress" / "app.py"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[types.ModuleType, dict[str, str]]]:
    """The example app, imported here, with a worker of its own started by
    ``tether celery worker`` on a queue of this module's own."""
    need_redis()
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


@pytest.fixture(scope="module")
def served(example: tuple[types.ModuleType, dict[str, str]]) -> Iterator[int]:
    """The example served by ``tether run`` (uvicorn), with the worker above: its port."""
    _, env = example
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tether", "--app", str(EXAMPLE), "run", "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT / "src")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, server)
        yield port
    finally:
        server.terminate()
        server.wait(30)


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
    [listed] = client.get("/api/jobs").get_json()["jobs"]  # type: ignore[attr-defined]
    assert listed.pop("created") > 0 and listed == {"id": job_id, "action": "new", "state": "done"}
    assert signed_in(module, "bob").get(f"/api/jobs/{job_id}/events").status_code == 404  # type: ignore[attr-defined]


def test_a_job_that_loses_the_race_to_create_its_account_updates_it(
    example: tuple[types.ModuleType, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = example
    name = f"race-{uuid.uuid4().hex[:8]}"
    with module.app.app_context():
        db = module.get_db()
        looked_up = db.get

        def get_then_lose(cls: type, key: str) -> object:
            """The account is not there yet; another job creates it right after."""
            found = looked_up(cls, key)
            if cls is module.Account and found is None:
                monkeypatch.setattr(db, "get", looked_up)
                with module.app.extensions["progress.sessions"]() as other:
                    other.add(module.Account(name=key, node="first"))
                    other.commit()
            return found

        monkeypatch.setattr(db, "get", get_then_lose)
        assert module.write_account(db, {"name": name, "node": "second", "app_type": "x"}) == name
        assert db.get(module.Account, name).node == "second"


JSON = {"Content-Type": "application/json"}
JOB = json.dumps({"name": "a", "node": "n", "app_type": "x"}).encode()
#: Bad requests to the API: (signed in?, method, path, headers, body, the status it must get).
BAD_REQUESTS: list[tuple[bool, str, str, dict[str, str], bytes, int]] = [
    (True, "GET", "/api/jobs/no-such-job/events", {}, b"", 404),
    (True, "GET", "/api/nothing-here", {}, b"", 404),
    (True, "POST", "/api/vm/reboot", JSON, JOB, 404),
    (True, "GET", "/api/vm/new", {}, b"", 405),
    (True, "DELETE", "/api/jobs", {}, b"", 405),
    (True, "PUT", "/api/vm/save", JSON, b'{"device_id": "d"}', 405),
    (False, "GET", "/api/jobs", {}, b"", 401),
    (False, "POST", "/api/vm/new", JSON, JOB, 401),
    (False, "GET", "/api/jobs/no-such-job/events", {}, b"", 401),
    (True, "POST", "/api/vm/new", JSON, b"{", 400),
    (True, "POST", "/api/vm/new", JSON, b"null", 400),
    (True, "POST", "/api/vm/new", JSON, b"\xff\xfe{}", 400),
    (True, "POST", "/api/vm/load", JSON, b'{"name": "a"}', 400),
    (True, "POST", "/api/vm/new", {"Content-Type": "text/plain"}, JOB, 415),
    (True, "POST", "/api/vm/new", {"Content-Type": "application/x-www-form-urlencoded"}, b"name=a&node=n", 415),
    (True, "POST", "/api/vm/new", {}, b"", 415),
    (True, "POST", "/api/vm/new", JSON, b'{"name": "' + b"a" * 20_000 + b'"}', 413),
]


def assert_json_error(case: tuple[object, ...], status: int, headers: t.Any, body: bytes) -> None:
    """One bad request's answer: the status it must get, JSON with an error, never HTML."""
    assert status == case[-1], (case[:3], status, body[:200])
    assert headers.get("Content-Type", "").split(";")[0] == "application/json", (case[:3], headers)
    answer = json.loads(body)
    assert isinstance(answer.get("error"), str) and answer["error"], (case[:3], answer)
    if status == 405:
        assert headers.get("Allow"), case[:3]


def test_every_api_error_answers_json_through_the_test_client(
    example: tuple[types.ModuleType, dict[str, str]],
) -> None:
    module, _ = example
    for case in BAD_REQUESTS:
        signed, method, path, headers, body, _status = case
        client: t.Any = signed_in(module, "dan") if signed else module.app.test_client()
        response = client.open(path, method=method, headers=headers, data=body)
        assert_json_error(case, response.status_code, response.headers, response.get_data())
    assert signed_in(module, "dan").get("/api/jobs").get_json() == {"jobs": []}  # type: ignore[attr-defined]
    page = module.app.test_client().get("/nothing-here")  # outside the API, errors keep their HTML page
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_a_crash_in_the_api_is_a_json_500(
    example: tuple[types.ModuleType, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = example
    client = signed_in(module, "dan")

    def broken() -> None:
        raise RuntimeError("the database is gone")

    monkeypatch.setitem(module.app.extensions, "progress.sessions", broken)
    response = client.get("/api/jobs")  # type: ignore[attr-defined]
    assert response.status_code == 500 and response.mimetype == "application/json"
    assert "the database is gone" not in response.get_json()["error"]


def test_every_api_error_answers_json_under_uvicorn(served: int) -> None:
    def ask(method: str, path: str, headers: dict[str, str], body: bytes) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", served, timeout=30)
        connection.request(method, path, body=body, headers=headers)
        return connection.getresponse()

    signing_in = ask("POST", "/", {"Content-Type": "application/x-www-form-urlencoded"}, b"user=dan")
    assert signing_in.status == 302
    cookie = signing_in.headers["Set-Cookie"].split(";")[0]
    for case in BAD_REQUESTS:
        signed, method, path, headers, body, _status = case
        response = ask(method, path, {**headers, "Cookie": cookie} if signed else headers, body)
        assert_json_error(case, response.status, response.headers, response.read())
    page = ask("GET", "/nothing-here", {}, b"")
    assert page.status == 404 and page.headers["Content-Type"].startswith("text/html")


#: The job form's fields, by their visible labels.
LABELS = {"Action": "action", "Account name": "name", "Node": "node", "App type": "app_type", "Device id": "device_id"}


def test_the_page_labels_its_fields_and_resumes_a_job_after_a_reload_in_chromium(
    served: int, chromium_path: str  # noqa: F811
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://127.0.0.1:{served}/")
            assert unlabelled(page) == []
            page.get_by_label("Your name", exact=True).fill("cara")
            page.click("button")
            assert unlabelled(page) == []
            for label, name in LABELS.items():
                field = page.get_by_label(label, exact=True)
                assert field.get_attribute("name") == name and field.is_visible()
                assert page.locator(f"label[for={name}]").is_visible()
            page.get_by_label("Action").select_option("save")  # the fields save does not send are disabled
            assert page.get_by_label("Node", exact=True).is_disabled()
            assert page.get_by_label("Device id").is_enabled()
            page.get_by_label("Action").select_option("new")
            assert "DB 0" in page.locator("dl").inner_text()  # the page says which Redis DB it uses
            page.click("#job button")
            page.wait_for_selector(".job p.progress")  # the job has started
            page.reload()  # mid-job: the page follows it again
            page.wait_for_selector(".job[data-state=done]", timeout=30_000)
            job = page.locator(".job").first
            lines = job.locator("p").all_text_contents()
            assert len(lines) == 4 and "creating VM account" in lines[0] and "created" in lines[-1]
            assert job.locator("progress").evaluate("bar => [bar.value, bar.max]") == [3, 3]
            assert errors == []
        finally:
            browser.close()


def unlabelled(page: t.Any) -> list[str]:
    """The page's form controls without a label that names them by ``for``."""
    return t.cast(list[str], page.evaluate("""() => [...document.querySelectorAll("input, select, textarea")]
        .filter(control => control.type !== "hidden")
        .filter(control => !control.id || !document.querySelector(`label[for="${control.id}"]`)
            || control.labels.length === 0)
        .map(control => control.outerHTML)"""))
