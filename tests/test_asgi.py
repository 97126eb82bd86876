"""The ASGI adapter and async code: one app object for both protocols, async
views under WSGI, request bodies, streaming, lifespan."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

import tether
from asgi_harness import Exchange, http_scope, run
from tether import g, request
from tether.serving.lifecycle import Stopping

CHUNKED = (b"transfer-encoding", b"chunked")


def test_one_object_for_wsgi_and_asgi_servers(app: tether.Tether) -> None:
    app.add_url_rule("/", "index", lambda: "ok")
    assert asyncio.iscoroutinefunction(app.__call__)
    assert inspect.iscoroutinefunction(app.__call__)
    statuses: list[str] = []
    environ = tether.testing.EnvironBuilder(app, "/").get_environ()
    assert b"".join(app(environ, lambda status, headers: statuses.append(status))) == b"ok"
    assert statuses == ["200 OK"]
    exchange = Exchange()
    run(app(http_scope("/"), exchange.receive, exchange.send))
    assert exchange.sent[0]["status"] == 200 and exchange.chunks == [b"ok"]


def test_async_views_hooks_handlers_and_teardowns(app: tether.Tether, client: object) -> None:
    events: list[str] = []

    @app.before_request
    async def before() -> None:
        await asyncio.sleep(0)
        g.user = "ada"

    @app.after_request
    async def after(response: tether.Response) -> tether.Response:
        response.headers["X-After"] = "async"
        return response

    @app.errorhandler(KeyError)
    async def handle_key_error(e: KeyError) -> tuple[str, int]:
        return f"missing {e}", 404

    @app.teardown_request
    async def teardown(exc: BaseException | None) -> None:
        events.append(f"teardown {request.path}")

    @app.route("/async")
    async def async_view() -> dict[str, object]:
        await asyncio.sleep(0)
        return {"user": g.user, "q": request.args.get("q")}

    @app.route("/sync")
    def sync_view() -> str:
        return g.user

    @app.route("/missing")
    async def missing() -> str:
        raise KeyError("thing")

    client = app.test_client()
    response = client.get("/async?q=1")
    assert response.json == {"user": "ada", "q": "1"} and response.headers["X-After"] == "async"
    assert client.get("/sync").text == "ada"
    missing_response = client.get("/missing")
    assert (missing_response.status_code, missing_response.text) == (404, "missing 'thing'")
    assert events == ["teardown /async", "teardown /sync", "teardown /missing"]


def test_async_views_under_wsgi_reuse_one_loop_per_thread() -> None:
    app = tether.Tether("loops")
    seen: list[tuple[int, int]] = []

    @app.route("/")
    async def index() -> str:
        seen.append((threading.get_ident(), id(asyncio.get_running_loop())))
        return "ok"

    client = app.test_client()
    for _ in range(3):
        client.get("/")
    worker = threading.Thread(target=lambda: app.test_client().get("/"))
    worker.start()
    worker.join()
    main_loops = {loop for ident, loop in seen if ident == threading.get_ident()}
    assert len(seen) == 4 and len(main_loops) == 1
    assert seen[3][1] not in main_loops


def test_sync_view_body_under_asgi_form_files_and_data(app: tether.Tether) -> None:
    @app.post("/upload")
    def upload() -> dict[str, object]:
        return {
            "form": request.form.to_dict(),
            "file": request.files["f"].read().decode(),
            "name": request.files["f"].filename,
        }

    @app.post("/raw")
    async def raw() -> dict[str, object]:
        return {"data": request.get_data(as_text=True), "json": request.get_json(silent=True)}

    client = app.test_client(asgi=True)
    import io

    response = client.post("/upload", data={"a": "1", "f": (io.BytesIO(b"x" * 100_000), "big.txt")})
    assert response.json == {"form": {"a": "1"}, "file": "x" * 100_000, "name": "big.txt"}
    assert client.post("/raw", data="plain", content_type="text/plain").json == {"data": "plain", "json": None}


def test_body_in_chunks_for_sync_and_async_views(app: tether.Tether) -> None:
    @app.post("/sync")
    def sync_echo() -> dict[str, object]:
        return {"got": request.json}

    @app.post("/async")
    async def async_echo() -> dict[str, object]:
        return {"got": request.json}

    for path in ("/sync", "/async"):
        exchange = Exchange([b'{"a": ', b"[1, 2", b"]}"])
        scope = http_scope(path, "POST", headers=[(b"content-type", b"application/json"), CHUNKED])
        run(app(scope, exchange.receive, exchange.send))
        assert exchange.chunks == [b'{"got":{"a":[1,2]}}\n'], path


def test_async_view_consumes_the_body_incrementally(app: tether.Tether) -> None:
    seen: list[tuple[bytes, int]] = []
    exchange = Exchange([b"one", b"two", b"three"])

    @app.post("/upload")
    @tether.stream_body
    async def upload() -> str:
        async for chunk in request.iter_body():
            seen.append((chunk, exchange.received_calls))
        return "ok"

    run(app(http_scope("/upload", "POST", headers=[CHUNKED]), exchange.receive, exchange.send))
    assert seen == [(b"one", 1), (b"two", 2), (b"three", 3)]
    assert exchange.chunks == [b"ok"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_too_large_body_is_refused_before_it_is_read(app: tether.Tether, kind: str) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 10

    def sync_view() -> str:
        return request.get_data(as_text=True)

    async def async_view() -> str:
        return request.get_data(as_text=True)

    app.add_url_rule("/", "index", sync_view if kind == "sync" else async_view, methods=["POST"])
    exchange = Exchange([b"x" * 50])
    scope = http_scope("/", "POST", headers=[(b"content-length", b"50")])
    run(app(scope, exchange.receive, exchange.send))
    assert exchange.sent[0]["status"] == 413 and exchange.received_calls == 0
    chunked = Exchange([b"x" * 6, b"x" * 6, b"x" * 6])
    run(app(http_scope("/", "POST", headers=[CHUNKED]), chunked.receive, chunked.send))
    assert chunked.sent[0]["status"] == 413


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_stream_keeps_contexts_and_ends_on_disconnect(app: tether.Tether, kind: str) -> None:
    events: list[str] = []
    app.teardown_request(lambda exc: events.append("teardown"))

    @app.route("/sync")
    def sync_stream() -> Iterator[str]:
        g.who = "sync"

        def generate() -> Iterator[str]:
            try:
                for n in range(1000):
                    yield f"{n} {request.path} {g.who}\n"
            finally:
                events.append(f"finally {request.path}")

        return generate()

    @app.route("/async")
    async def async_stream() -> AsyncIterator[str]:
        g.who = "async"

        async def generate() -> AsyncIterator[str]:
            try:
                for n in range(1000):
                    await asyncio.sleep(0)
                    yield f"{n} {request.path} {g.who}\n"
            finally:
                events.append(f"finally {request.path}")

        return generate()

    exchange = Exchange(disconnect_after=3)
    run(app(http_scope(f"/{kind}"), exchange.receive, exchange.send))
    assert exchange.chunks[:3] == [f"{n} /{kind} {kind}\n".encode() for n in range(3)]
    assert len(exchange.chunks) < 10
    assert events == [f"finally /{kind}", "teardown"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_stream_is_produced_no_faster_than_sent(app: tether.Tether, kind: str) -> None:
    produced: list[int] = []
    sent_when_produced: list[int] = []

    def make() -> Iterator[str]:
        for n in range(5):
            produced.append(n)
            yield str(n)

    async def amake() -> AsyncIterator[str]:
        for n in make():
            yield n

    app.add_url_rule("/", "index", lambda: make() if kind == "sync" else amake())

    class Slow(Exchange):
        async def send(self, message: dict[str, object]) -> None:
            sent_when_produced.append(len(produced))
            await asyncio.sleep(0.01)
            await super().send(message)

    exchange = Slow()
    run(app(http_scope("/"), exchange.receive, exchange.send))
    assert exchange.chunks == [b"0", b"1", b"2", b"3", b"4"]
    # when chunk n is sent, at most n + 1 chunks have been produced
    body_sends = sent_when_produced[1:6]
    assert body_sends == [1, 2, 3, 4, 5]


def test_stream_ends_when_the_server_stops(app: tether.Tether) -> None:
    events: list[str] = []
    app.teardown_request(lambda exc: events.append("teardown"))

    @app.route("/")
    async def endless() -> AsyncIterator[str]:
        async def generate() -> AsyncIterator[str]:
            try:
                while True:
                    yield "tick\n"
                    await asyncio.sleep(0.01)
            finally:
                events.append("finally")

        return generate()

    async def main() -> Exchange:
        stopping = Stopping()
        app.serving.stopping = stopping
        exchange = Exchange()
        task = asyncio.ensure_future(app(http_scope("/"), exchange.receive, exchange.send))
        while len(exchange.chunks) < 2:
            await asyncio.sleep(0.01)
        stopping.set()
        await asyncio.wait_for(task, 10)
        return exchange

    exchange = run(main())
    assert exchange.chunks[:2] == [b"tick\n", b"tick\n"] and events == ["finally", "teardown"]


def test_sync_view_runs_in_the_pool_not_on_the_loop(app: tether.Tether) -> None:
    threads: dict[str, str] = {}

    @app.route("/sync")
    def sync_view() -> str:
        threads["sync"] = threading.current_thread().name
        return "ok"

    @app.route("/async")
    async def async_view() -> str:
        threads["async"] = threading.current_thread().name
        return "ok"

    client = app.test_client(asgi=True)
    client.get("/sync")
    client.get("/async")
    assert threads["sync"].startswith("tether-sync") and threads["async"] == "tether-test-loop"


def test_lifespan_runs_before_and_after_serving(app: tether.Tether) -> None:
    events: list[str] = []

    @app.before_serving
    def start_sync() -> None:
        events.append(f"start sync {tether.current_app.name}")

    @app.before_serving
    async def start_async() -> None:
        g.started = True
        events.append("start async")

    @app.after_serving
    async def stop() -> None:
        events.append("stop")

    client = app.test_client()
    with client.lifespan():
        assert events == ["start sync test_app", "start async"]
    assert events[-1] == "stop"


def test_failing_before_serving_stops_startup(app: tether.Tether) -> None:
    @app.before_serving
    def broken() -> None:
        raise ConnectionError("database unreachable")

    with pytest.raises(RuntimeError, match="before_serving function failed with ConnectionError: database unreachable"):
        with app.test_client().lifespan():
            pass


def test_before_serving_under_wsgi_runs_once_before_the_first_request() -> None:
    app = tether.Tether("wsgi_serving")
    calls: list[str] = []
    app.before_serving(lambda: calls.append("start"))
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    client.get("/")
    client.get("/")
    assert calls == ["start"]


def test_request_environ_and_headers_under_asgi(app: tether.Tether) -> None:
    @app.route("/where")
    async def where() -> dict[str, object]:
        environ = request.environ
        return {
            "path": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"],
            "header": environ["HTTP_X_TOKEN"],
            "cookie": environ["HTTP_COOKIE"],
            "scope": environ["asgi.scope"]["type"],
            "lookup": request.headers.get("x-TOKEN"),
            "remote": request.remote_addr,
            "cookies": request.cookies.to_dict(),
        }

    exchange = Exchange()
    headers = [(b"x-token", b"abc"), (b"cookie", b"a=1"), (b"cookie", b"b=2")]
    run(app(http_scope("/where", query=b"x=1", headers=headers), exchange.receive, exchange.send))
    import json

    assert json.loads(exchange.chunks[0]) == {
        "path": "/where", "query": "x=1", "header": "abc", "cookie": "a=1; b=2", "scope": "http",
        "lookup": "abc", "remote": "127.0.0.1", "cookies": {"a": "1", "b": "2"},
    }


def test_after_this_request_in_an_async_view_without_hooks(app: tether.Tether) -> None:
    @app.route("/")
    async def index() -> str:
        @tether.after_this_request
        def add_header(response: tether.Response) -> tether.Response:
            response.headers["X-Later"] = "yes"
            return response

        return "ok"

    response = app.test_client(asgi=True).get("/")
    assert response.text == "ok" and response.headers["X-Later"] == "yes"
