"""The test client and CLI runner behave as Flask's."""

from __future__ import annotations

import gc
import threading

import click
import pytest

import tether
from tether import current_app, g, request, session
from tether.contexts.globals import app_ctx


def test_client_json_data_and_cookie_jar(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.post("/echo")
    def echo() -> dict[str, object]:
        return {"json": request.json, "agent": request.user_agent.string.split("/")[0], "ip": request.remote_addr}

    @app.route("/count")
    def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    assert client.post("/echo", json={"a": [1]}).json == {"json": {"a": [1]}, "agent": "Werkzeug", "ip": "127.0.0.1"}
    assert [client.get("/count").text for _ in range(3)] == ["1", "2", "3"]
    assert app.test_client().get("/count").text == "1"
    assert app.test_client(use_cookies=False).get("/count").text == "1"


def test_follow_redirects(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    app.add_url_rule("/a", "a", lambda: tether.redirect("/b"))
    app.add_url_rule("/b", "b", lambda: "landed")
    response = client.get("/a", follow_redirects=True)
    assert response.text == "landed" and [r.status_code for r in response.history] == [302]


def test_session_transaction(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    app.add_url_rule("/whoami", "whoami", lambda: str(session.get("user")))
    with client.session_transaction() as sess:
        sess["user"] = "grace"
    assert client.get("/whoami").text == "grace"
    with client.session_transaction() as sess:
        assert sess["user"] == "grace"
    with pytest.raises(TypeError, match="Cookies are disabled"):
        with app.test_client(use_cookies=False).session_transaction():
            pass


def test_with_client_keeps_the_last_request_context(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/page")
    def page() -> str:
        g.seen = request.args["x"]
        return "ok"

    with client:
        client.get("/page?x=1")
        assert request.args["x"] == "1" and g.seen == "1" and current_app.name == "test_app"
        client.get("/page?x=2")
        assert request.args["x"] == "2"
    assert not tether.has_request_context()
    with pytest.raises(RuntimeError, match="nest"):
        with client:
            with client:
                pass


def test_an_app_context_opened_inside_with_client_closes_around_the_kept_request(
    app: tether.Tether, client: tether.testing.TetherClient
) -> None:
    # The request finds the app context current and uses it; the client keeps
    # that same context, so its own ``with`` closes it, under WSGI and ASGI.
    torn_down = []
    app.teardown_appcontext(lambda exc: torn_down.append(exc))

    @app.route("/page")
    def page() -> str:
        g.seen = "in view"
        return "ok"

    with client:
        with app.app_context() as outer:
            assert client.get("/page").text == "ok"
            assert g.seen == "in view" and request.path == "/page"
        assert app_ctx._get_current_object() is outer and g.seen == "in view"
        assert request.path == "/page" and torn_down == []
    assert not tether.has_request_context() and not tether.has_app_context()
    assert torn_down == [None]


def test_test_request_context_takes_environ_builder_arguments(app: tether.Tether) -> None:
    with app.test_request_context(
        "/path?a=1", method="POST", json={"k": 1}, headers={"X-H": "v"}, base_url="https://example.org/root"
    ):
        assert request.method == "POST" and request.json == {"k": 1} and request.headers["X-H"] == "v"
        assert request.args["a"] == "1" and request.url == "https://example.org/root/path?a=1"
        assert request.script_root == "/root"


def test_cli_runner_invokes_app_commands(app: tether.Tether) -> None:
    @app.cli.command("hello")
    @click.argument("name")
    def hello(name: str) -> None:
        click.echo(f"hello {name} from {current_app.name}")

    @app.cli.command("plain", with_appcontext=False)
    def plain() -> None:
        click.echo(f"context: {tether.has_app_context()}")

    runner = app.test_cli_runner()
    result = runner.invoke(args=["hello", "ada"])
    assert result.exit_code == 0 and result.output == "hello ada from test_app\n"
    assert runner.invoke(args=["plain"]).output == "context: False\n"


def _loop_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "tether-test-loop"}


def _asgi_app() -> tether.Tether:
    app = tether.Tether(__name__)

    @app.get("/")
    async def index() -> str:
        return "hi"

    return app


@pytest.mark.parametrize("end", ["close", "with", "collect"])
def test_the_asgi_client_ends_its_loop_thread(end: str) -> None:
    before = _loop_threads()
    client = _asgi_app().test_client(asgi=True)
    if end == "with":
        with client:
            assert client.get("/").data == b"hi"
    else:
        assert client.get("/").data == b"hi"
    assert len(_loop_threads() - before) == 1 or end == "with"
    if end == "close":
        client.close()
    elif end == "collect":
        del client
        gc.collect()
        for thread in _loop_threads() - before:
            thread.join(30)  # collection asks the loop to stop, without waiting
    assert _loop_threads() - before == set()


def test_collecting_a_client_inside_a_lock_its_loop_needs_does_not_deadlock() -> None:
    """The collector runs finalizers wherever it starts, here while a thread
    holds the lock every ``ThreadPoolExecutor.submit`` takes, which the app's
    shutdown on the client's loop needs (its ``run_in_executor``): collection
    asks the loop to stop and must not wait for it there."""
    import concurrent.futures.thread

    def collect_inside_the_lock() -> None:
        client = _asgi_app().test_client(asgi=True)
        assert client.get("/").data == b"hi"
        with concurrent.futures.thread._global_shutdown_lock:
            del client
            gc.collect()

    worker = threading.Thread(target=collect_inside_the_lock, daemon=True)
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "the collection waited for the loop, which waited for the lock"
    _asgi_app().test_client(asgi=True).get("/")  # the next client waits for that loop's end, then starts


def test_a_closed_asgi_client_can_be_used_again() -> None:
    client = _asgi_app().test_client(asgi=True)
    with client:
        assert client.get("/").data == b"hi"
    assert client.get("/").data == b"hi"
    client.close()


def test_a_client_after_a_closed_one_starts_the_app_again() -> None:
    """An app started by a client's first request (no lifespan) shuts down with
    that client's loop; the next client starts it again on its own loop, with
    a stopping event of its own, so its WebSocket is not told the server is
    shutting down."""
    app = tether.Tether(__name__)
    calls: list[str] = []
    app.before_serving(lambda: calls.append("before"))
    app.after_serving(lambda: calls.append("after"))

    @app.websocket("/echo")
    async def echo() -> None:
        await tether.websocket.accept()
        await tether.websocket.send(await tether.websocket.receive())

    for _ in range(2):
        with app.test_client(asgi=True) as client, client.websocket("/echo") as ws:
            ws.send("hi")
            assert ws.receive() == "hi"
    assert calls == ["before", "after", "before", "after"]
