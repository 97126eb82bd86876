"""Streamed bodies keep their request and app contexts, with no wrapper, and end cleanly."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator

import pytest

import tether
from tether import Response, current_app, g, request, session
from tether.application.sessions import SessionSealedError
from tether.contexts.ctx import _cv_app, _cv_request


def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
    pass


def environ(app: tether.Tether, path: str, **kwargs: object) -> dict[str, object]:
    from tether.testing import EnvironBuilder

    return EnvironBuilder(app, path, **kwargs).get_environ()


def test_generator_sees_request_and_g_and_teardown_follows_last_chunk(app: tether.Tether) -> None:
    events: list[str] = []
    app.teardown_request(lambda exc: events.append("teardown_request"))
    app.teardown_appcontext(lambda exc: events.append("teardown_appcontext"))

    @app.route("/stream")
    def stream() -> Iterator[str]:
        g.user = "ada"

        def generate() -> Iterator[str]:
            for i in range(3):
                events.append(f"chunk {i}")
                yield f"{i}:{request.args['q']}:{g.user}:{current_app.name}\n"

        return generate()

    body = app.wsgi_app(environ(app, "/stream?q=x"), start_response)
    # The first chunk is produced before the status is chosen (an error there
    # gets its own response); the rest as the server asks for them.
    assert events == ["chunk 0"]
    assert _cv_request.get(None) is None and _cv_app.get(None) is None
    chunks = list(body)
    assert events == ["chunk 0", "chunk 1", "chunk 2", "teardown_request", "teardown_appcontext"]
    body.close()
    assert b"".join(chunks) == b"0:x:ada:test_app\n1:x:ada:test_app\n2:x:ada:test_app\n"
    body.close()
    assert events.count("teardown_request") == 1


def test_iterator_inside_a_response_object(app: tether.Tether) -> None:
    @app.route("/")
    def index() -> Response:
        return Response((f"{request.method}{n}" for n in range(2)), mimetype="text/plain")

    response = app.test_client().get("/")
    assert response.data == b"GET0GET1"
    assert response.mimetype == "text/plain"


def test_client_going_away_closes_the_generator_in_context(app: tether.Tether) -> None:
    events: list[str] = []
    app.teardown_request(lambda exc: events.append("teardown"))

    @app.route("/endless")
    def endless() -> Iterator[str]:
        def generate() -> Iterator[str]:
            try:
                n = 0
                while True:
                    n += 1
                    yield f"{n}\n"
            finally:
                events.append(f"finally {request.path}")

        return generate()

    body = app.wsgi_app(environ(app, "/endless"), start_response)
    iterator = iter(body)
    assert next(iterator) == b"1\n" and next(iterator) == b"2\n"
    body.close()
    assert events == ["finally /endless", "teardown"]


def test_abandoned_body_finalized_on_another_thread(app: tether.Tether) -> None:
    events: list[tuple[str, object]] = []

    @app.teardown_appcontext
    def record(exc: BaseException | None) -> None:
        events.append(("teardown", threading.current_thread().name))

    @app.route("/gen")
    def gen() -> Iterator[str]:
        def generate() -> Iterator[str]:
            try:
                yield "a"
                yield "b"
            finally:
                events.append(("finally", request.path))

        return generate()

    leaks: list[object] = []

    def serve_one() -> None:
        body = app.wsgi_app(environ(app, "/gen"), start_response)
        next(iter(body))
        leaks.append((_cv_request.get(None), _cv_app.get(None)))
        # The server drops the body without closing it (a buggy server, a crash).

    worker = threading.Thread(target=serve_one, name="pool-1")
    worker.start()
    worker.join()
    collector = threading.Thread(target=gc.collect, name="collector")
    collector.start()
    collector.join()
    assert leaks == [(None, None)]
    assert ("finally", "/gen") in events
    assert [e for e in events if e[0] == "teardown"] == [("teardown", "collector")] or events.count(
        ("teardown", "pool-1")
    ) == 1
    assert len([e for e in events if e[0] == "teardown"]) == 1


def test_test_client_stream_tears_down_once_read(app: tether.Tether) -> None:
    torn: list[object] = []
    app.teardown_request(torn.append)
    app.add_url_rule("/", "index", lambda: (str(i) for i in range(3)))
    response = app.test_client().get("/", buffered=False)
    assert torn == []
    assert response.get_data() == b"012"
    assert torn == [None]
    response.close()
    assert torn == [None]


def test_streamed_error_reaches_teardown_once(app: tether.Tether) -> None:
    seen: list[object] = []
    app.teardown_request(seen.append)

    @app.route("/")
    def index() -> Iterator[str]:
        def generate() -> Iterator[str]:
            yield "ok"
            raise ValueError("mid-stream")

        return generate()

    body = app.wsgi_app(environ(app, "/"), start_response)
    iterator = iter(body)
    next(iterator)
    with pytest.raises(ValueError):
        next(iterator)
    body.close()
    assert len(seen) == 1 and isinstance(seen[0], ValueError)


def test_head_request_to_a_stream_does_not_run_it(app: tether.Tether) -> None:
    ran: list[str] = []
    torn: list[object] = []
    app.teardown_request(torn.append)

    @app.route("/")
    def index() -> Iterator[str]:
        def generate() -> Iterator[str]:
            ran.append("ran")
            yield "x"

        return generate()

    response = app.test_client().head("/")
    assert response.status_code == 200 and response.data == b""
    assert ran == [] and torn == [None]


def test_seed_000_generator_works_as_written(app: tether.Tether) -> None:
    """The three SSE endpoints of seed 000, with the generator reading request.json."""

    def make(endpoint: str, build: object) -> None:
        def view() -> Response:
            def generate() -> Iterator[str]:
                try:
                    data = request.json
                    for message in build(data):  # type: ignore[operator]
                        yield f"data: {json.dumps(message)}\n\n"
                except Exception as e:
                    yield f"data: {json.dumps({'type': 'error', 'message': str(e)})}\n\n"

            return Response(generate(), mimetype="text/event-stream")

        app.add_url_rule(endpoint, endpoint.strip("/").replace("/", "_"), view, methods=["POST"])

    make("/api/vm/new", lambda d: [
        {"type": "log", "message": f"creating {d.get('name', '').strip()} on {d.get('node')}"},
        {"type": "success", "message": f"VM {d['name']} created"},
    ])
    make("/api/vm/save", lambda d: [{"type": "success", "message": f"saved {d.get('device_id', '').strip()}"}])
    make("/api/vm/load", lambda d: [{"type": "success", "message": f"loaded {d['name']} on {d['device_id']}"}])

    client = app.test_client()
    new = client.post("/api/vm/new", json={"name": "Carousell_HK_003", "app_type": "Carousell", "node": "HK_061"})
    assert new.mimetype == "text/event-stream"
    events = [json.loads(line[6:]) for line in new.text.split("\n\n") if line]
    assert events == [
        {"type": "log", "message": "creating Carousell_HK_003 on HK_061"},
        {"type": "success", "message": "VM Carousell_HK_003 created"},
    ]
    assert "saved 72e8932c" in client.post("/api/vm/save", json={"device_id": "72e8932c"}).text
    assert "loaded A on d" in client.post("/api/vm/load", json={"name": "A", "device_id": "d"}).text


def test_session_change_after_headers_sent_raises(app: tether.Tether) -> None:
    errors: list[str] = []

    @app.route("/")
    def index() -> Iterator[str]:
        session["before"] = 1

        def generate() -> Iterator[str]:
            yield "start"
            assert session["before"] == 1
            try:
                session["after"] = 2
            except SessionSealedError as e:
                errors.append(str(e))
            yield "end"

        return generate()

    @app.route("/lazy")
    def lazy() -> Iterator[str]:
        def generate() -> Iterator[str]:
            yield "start"
            try:
                session["late"] = 1
            except SessionSealedError as e:
                errors.append(str(e))
            yield "end"

        return generate()

    client = app.test_client()
    assert client.get("/").data == b"startend"
    assert app.test_client().get("/lazy").data == b"startend"
    assert len(errors) == 2
    assert "after its response headers were sent" in errors[0]
    assert "first used after its response headers were sent" in errors[1]
    with client.session_transaction() as sess:
        assert dict(sess) == {"before": 1}


def test_stream_with_context_is_kept_for_compatibility(app: tether.Tether) -> None:
    @app.route("/")
    def index() -> Response:
        @tether.stream_with_context
        def generate() -> Iterator[str]:
            yield request.args["a"]

        return Response(generate())

    @app.route("/later")
    def later() -> str:
        iterator = tether.stream_with_context(iter([request.args["b"]]))
        result: list[str] = []
        thread = threading.Thread(target=lambda: result.extend(iterator))
        thread.start()
        thread.join()
        return result[0]

    client = app.test_client()
    assert client.get("/?a=1").data == b"1"
    assert client.get("/later?b=2").data == b"2"
