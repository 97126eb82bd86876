"""Background work: app.spawn and @app.periodic, each with contexts of their own."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time

import pytest

import tether
from tether import ContextError, current_app, g, request


def test_spawned_job_reads_the_request_after_the_response(app: tether.Tether) -> None:
    release = threading.Event()
    jobs: list[tether.live.background.Job] = []
    torn: list[str] = []
    app.teardown_request(lambda exc: torn.append(f"request {request.path}"))

    def work(tag: str) -> dict[str, object]:
        release.wait(10)
        return {
            "tag": tag,
            "json": request.form.to_dict() or request.get_json(silent=True),
            "file": request.files["upload"].read().decode() if "upload" in request.files else None,
            "args": request.args.to_dict(),
            "header": request.headers.get("X-Trace"),
            "own g": "seen" not in g,
            "app": current_app.name,
        }

    @app.post("/start")
    def start() -> str:
        g.seen = True
        jobs.append(app.spawn(work, tag="t1"))
        return "started"

    client = app.test_client()
    response = client.post(
        "/start?x=1", data={"upload": (io.BytesIO(b"file body"), "a.txt"), "field": "v"}, headers={"X-Trace": "abc"}
    )
    assert response.text == "started" and torn == ["request /start"]
    release.set()
    result = jobs[0].result(10)
    assert result == {
        "tag": "t1", "json": {"field": "v"}, "file": "file body", "args": {"x": "1"}, "header": "abc",
        "own g": True, "app": "test_app",
    }
    jobs.clear()
    release.clear()
    client.post("/start", json={"k": [1, 2]})
    release.set()
    assert jobs[0].result(10)["json"] == {"k": [1, 2]}


def test_spawned_async_work_and_its_teardown(app: tether.Tether) -> None:
    torn: list[object] = []
    app.teardown_appcontext(lambda exc: torn.append(exc))

    async def work(n: int) -> str:
        await asyncio.sleep(0)
        g.n = n
        return f"{current_app.name} {g.n} {request.path}"

    job_holder: list[tether.live.background.Job] = []

    @app.route("/spawn")
    def spawn_view() -> str:
        job_holder.append(app.spawn(work, 7))
        return "ok"

    app.test_client().get("/spawn")
    assert job_holder[0].result(10) == "test_app 7 /spawn"
    assert job_holder[0].done() and None in torn


def test_spawned_work_failure_is_logged_and_signalled(app: tether.Tether, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, BaseException]] = []

    def broken() -> None:
        raise ValueError("job failed")

    def receiver(sender: object, function: str, exception: BaseException) -> None:
        seen.append((function, exception))

    with tether.signals.spawned_work_failed.connected_to(receiver, app), caplog.at_level(logging.ERROR):
        with app.app_context():
            job = app.spawn(broken)
        with pytest.raises(ValueError, match="job failed"):
            job.result(10)
    assert "Spawned work tests.test_background.test_spawned_work_failure_is_logged_and_signalled.<locals>.broken failed" in caplog.text or "broken failed" in caplog.text
    assert seen and seen[0][0].endswith("broken") and isinstance(seen[0][1], ValueError)


def test_async_job_can_be_cancelled_and_shutdown_has_a_grace_period(app: tether.Tether, caplog: pytest.LogCaptureFixture) -> None:
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    job = app.spawn(forever)
    assert started.wait(10)
    assert job.cancel() and job.wait(10)

    started.clear()

    async def slow_async() -> None:
        started.set()
        await asyncio.sleep(30)

    app.config["SPAWN_GRACE_PERIOD"] = 0.01
    slow_job = app.spawn(slow_async)
    assert started.wait(10)
    with caplog.at_level(logging.WARNING):
        app.background.shutdown()
    assert "slow_async was still running 0.01 s into shutdown and was cancelled" in caplog.text
    assert slow_job.wait(10)


def test_running_sync_job_is_asked_to_stop_at_shutdown(app: tether.Tether, caplog: pytest.LogCaptureFixture) -> None:
    """A sync job cannot be stopped from outside: it is asked to, stops when it
    checks, and its teardown runs; one that does not check is logged by name
    as abandoned, never as cancelled."""
    torn_down: list[object] = []
    app.teardown_appcontext(lambda exc: torn_down.append(exc))
    started = threading.Event()

    def cooperative() -> str:
        started.set()
        job = tether.current_job()
        assert job is not None
        while not job.cancel_requested:
            time.sleep(0.01)
        return "stopped"

    def stubborn() -> None:
        started.set()
        time.sleep(2)

    app.config["SPAWN_GRACE_PERIOD"] = 0.05
    job = app.spawn(cooperative)
    assert started.wait(10)
    with caplog.at_level(logging.WARNING):
        app.background.shutdown()
    assert job.result(10) == "stopped" and torn_down == [None]
    assert "cooperative was still running 0.05 s into shutdown and was cancelled" in caplog.text
    assert "abandoned" not in caplog.text

    caplog.clear()
    started.clear()
    job = app.spawn(stubborn)
    assert started.wait(10)
    with caplog.at_level(logging.WARNING):
        app.background.shutdown()
    assert "stubborn was still running 0.05 s into shutdown and did not stop when asked" in caplog.text
    assert "It is abandoned" in caplog.text and "was cancelled" not in caplog.text
    assert job.wait(10) and torn_down == [None, None]
    assert tether.current_job() is None


def test_plain_thread_error_names_spawn(app: tether.Tether) -> None:
    errors: list[str] = []

    @app.route("/")
    def index() -> str:
        def work() -> None:
            try:
                request.args  # noqa: B018
            except ContextError as e:
                errors.append(str(e))

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return "ok"

    app.test_client().get("/")
    assert "app.spawn(fn)" in errors[0] and "copy_current_request_context" in errors[0]
    assert "with app.app_context():" in errors[0]


def test_periodic_service_runs_in_fresh_contexts_and_survives_failures(app: tether.Tether, caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    contexts: list[object] = []
    torn: list[object] = []
    done = threading.Event()
    app.teardown_appcontext(lambda exc: torn.append(exc))

    @app.periodic(0.01, name="refresh")
    def refresh() -> None:
        contexts.append(g._get_current_object())
        g.marker = len(runs)
        runs.append(len(runs))
        if len(runs) == 2:
            raise RuntimeError("second run fails")
        if len(runs) >= 4:
            done.set()

    client = app.test_client()
    with caplog.at_level(logging.ERROR), client.lifespan():
        assert done.wait(10)
    count = len(runs)
    assert count >= 4
    assert len({id(c) for c in contexts}) == len(contexts)  # a new g for every run
    assert len(torn) >= count
    assert "Periodic service refresh failed" in caplog.text
    assert app.periodic_services["refresh"].failures == 1
    time.sleep(0.05)
    assert len(runs) == count  # stopped at shutdown
    app.periodic_services["refresh"].run_once()
    assert len(runs) == count + 1


def test_async_periodic_runs_never_overlap(app: tether.Tether) -> None:
    active: list[int] = []
    overlaps: list[int] = []
    finished = threading.Event()
    runs: list[int] = []

    @app.periodic(0)
    async def tick() -> None:
        if active:
            overlaps.append(1)
        active.append(1)
        await asyncio.sleep(0.005)
        active.pop()
        runs.append(1)
        if len(runs) >= 5:
            finished.set()

    with app.test_client().lifespan():
        assert finished.wait(10)
    assert overlaps == []
