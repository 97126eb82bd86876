"""One request, one thread: under ASGI a sync request's hooks, view, streamed
body and teardown run on one thread, as under WSGI, so thread-bound resources
(SQLite's default connections, ``threading.local`` caches) work unchanged.

The proof is Flask's own tutorial app, flaskr, served by a real uvicorn to
concurrent logged-in clients: whole responses, static files, generator bodies
and event streams that read the database, streams read to the end and streams
dropped halfway. Its SQLite connection refuses use from another thread."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import sys
import time
from pathlib import Path

import requests

import tether
from sdist import FLASK_SHA256, fetch

SERVERS = Path(__file__).parent / "servers"
REQUESTS = 1000
CLIENTS = 8


def open_handles(pid: int, path: Path) -> int:
    """How many file descriptors of process ``pid`` are open on ``path`` (or its journal)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        count += target.startswith(str(path))
    return count


def drop_halfway(port: int, cookie: str, path: str) -> None:
    """Read the first bytes of a streamed response, then vanish."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nCookie: session={cookie}\r\n\r\n".encode())
        sock.recv(64)


def test_flaskr_under_uvicorn_one_thread_per_request(serve: object, tmp_path: Path) -> None:
    tutorial = fetch("flask==3.1.3", "flask-3.1.3.tar.gz", FLASK_SHA256) / "examples" / "tutorial"
    database, errors = tmp_path / "flaskr.sqlite", tmp_path / "errors.log"
    errors.touch()
    command = [
        sys.executable, "-m", "uvicorn", "--port", "{port}", "--no-access-log", "--log-level", "warning", "flaskr_app:app",
    ]
    env = {"DATABASE": str(database), "ERRORS_FILE": str(errors), "PYTHONPATH": f"{SERVERS}{os.pathsep}{tutorial}"}
    port = serve(command, cwd=SERVERS, env=env)  # type: ignore[operator]
    pid = serve.procs[-1].pid  # type: ignore[attr-defined]
    base = f"http://127.0.0.1:{port}"

    login = requests.Session()
    assert login.post(base + "/auth/login", data={"username": "alice", "password": "alice"}, allow_redirects=False).status_code == 302
    cookie = login.cookies["session"]

    def one(n: int) -> str:
        kind = n % 6
        with requests.Session() as session:
            session.cookies.set("session", cookie)
            if kind == 0:
                response = session.get(base + "/static/style.css")
                return "ok" if response.status_code == 200 and "body" in response.text else f"static {response.status_code}"
            if kind == 1:
                response = session.get(base + "/")
                return "ok" if response.status_code == 200 and "first" in response.text else f"index {response.status_code}"
            if kind == 2:
                response = session.get(base + "/stream")
                return "ok" if response.text == "0 1\n1 1\n2 1\n" else f"stream {response.status_code} {response.text!r}"
            if kind == 3:
                response = session.get(base + "/events")
                return "ok" if response.text.count("data: first") == 3 else f"events {response.text!r}"
            if kind == 4:
                response = session.get(base + "/create")
                return "ok" if response.status_code == 200 and "New Post" in response.text else f"create {response.status_code}"
            drop_halfway(port, cookie, "/stream" if n % 12 == 5 else "/events")
            return "ok"

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as clients:
        outcomes = list(clients.map(one, range(REQUESTS)))
    assert [o for o in outcomes if o != "ok"] == []

    deadline = time.monotonic() + 20
    while open_handles(pid, database) and time.monotonic() < deadline:  # the dropped streams end on their own
        time.sleep(0.1)
    assert open_handles(pid, database) == 0, "leaked SQLite connections"
    assert errors.read_text() == ""


def test_sync_request_steps_share_one_thread_under_asgi() -> None:
    """Every step of a sync request whose body is streamed runs on one thread:
    the hook, the view, each chunk, the source's ``finally`` and the teardown."""
    import threading

    app = tether.Tether(__name__)
    seen: list[tuple[str, int]] = []

    def note(step: str) -> None:
        seen.append((step, threading.get_ident()))

    app.before_request(lambda: note("before"))
    app.teardown_request(lambda exc: note("teardown"))

    @app.route("/")
    def index():
        note("view")

        def body():
            try:
                for n in range(3):
                    note(f"chunk {n}")
                    yield str(n)
            finally:
                note("finally")

        return body()

    @app.route("/events")
    def events():
        note("view")

        def source():
            try:
                for n in range(2):
                    note(f"event {n}")
                    yield n
            finally:
                note("finally")

        return tether.EventStream(source())

    client = app.test_client(asgi=True)
    for path, steps in [
        ("/", ["before", "view", "chunk 0", "chunk 1", "chunk 2", "finally", "teardown"]),
        ("/events", ["before", "view", "event 0", "event 1", "finally", "teardown"]),
    ]:
        seen.clear()
        response = client.get(path)
        assert response.status_code == 200 and response.data
        assert [step for step, _ in seen] == steps
        assert len({thread for _, thread in seen}) == 1, seen
    assert not any(thread == threading.get_ident() for _, thread in seen)


def test_concurrent_streams_keep_their_threads_apart() -> None:
    """Two sync streams in flight at once each stay on their own thread."""
    import threading

    app = tether.Tether(__name__)
    threads: dict[str, set[int]] = {}
    both_started = threading.Barrier(2, timeout=10)

    @app.route("/<name>")
    def stream(name: str):
        def body():
            for n in range(4):
                threads.setdefault(name, set()).add(threading.get_ident())
                if n == 1:
                    both_started.wait()
                yield f"{name}{n}"
            threads.setdefault(name, set()).add(threading.get_ident())

        return body()

    client = app.test_client(asgi=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        bodies = list(pool.map(lambda name: client.get(f"/{name}").text, ["a", "b"]))
    assert bodies == ["a0a1a2a3", "b0b1b2b3"]
    assert all(len(ids) == 1 for ids in threads.values()), threads
    assert threads["a"] != threads["b"]


def test_a_sync_source_is_closed_before_aclose_returns_even_when_cancelled_twice() -> None:
    """What a streamed body's teardown relies on: closing a sync source while an
    item is being fetched waits for the fetch, closes the source on the same
    thread, and returns only after its ``finally`` ran, however often the wait
    is cancelled (hypercorn cancels twice at shutdown)."""
    import asyncio
    import threading

    from tether.serving.sync_pool import SyncPool
    from tether.serving.threaded import ThreadedIterator

    pool = SyncPool(2)
    events: list[tuple[str, int]] = []
    fetching, gate = threading.Event(), threading.Event()

    def source():
        try:
            events.append(("first", threading.get_ident()))
            yield 1
            fetching.set()
            gate.wait(10)
            yield 2
        finally:
            events.append(("finally", threading.get_ident()))

    async def main() -> None:
        iterator = ThreadedIterator(source(), pool)
        assert await iterator.__anext__() == 1
        fetch = iterator.__anext__()
        await asyncio.get_running_loop().run_in_executor(None, fetching.wait, 10)
        closing = asyncio.ensure_future(iterator.aclose())
        for _ in range(2):
            await asyncio.sleep(0)
            closing.cancel()
        gate.set()
        try:
            await closing
        except asyncio.CancelledError:
            events.append(("aclose returned", 0))
        assert await fetch == 2

    asyncio.run(main())
    assert [name for name, _ in events] == ["first", "finally", "aclose returned"]
    assert events[0][1] == events[1][1]
    pool.shutdown()


def _cancel_twice_while_fetching(path: str, wrap: bool) -> list[str]:
    """Serve ``path`` over raw ASGI, take its first chunk, then cancel the
    request's task twice while its sync source produces the next item (as
    hypercorn does at shutdown); what happened, in order, once the task ends."""
    import asyncio
    import threading

    app = tether.Tether(__name__)
    seen: list[tuple[str, int]] = []
    fetching, gate = threading.Event(), threading.Event()

    def note(step: str) -> None:
        seen.append((step, threading.get_ident()))

    def source():
        try:
            note("item 1")
            yield "1"
            fetching.set()
            gate.wait(10)
            note("item 2")
            yield "2"
        finally:
            note("finally")

    app.teardown_request(lambda exc: note("teardown"))
    app.add_url_rule("/body", "body", lambda: source())
    app.add_url_rule("/events", "events", lambda: tether.EventStream(source()))

    @app.route("/async-events")
    async def async_events():
        return tether.EventStream(source())

    if wrap:  # an instance-level wrapper: served through the WSGI chain
        inner = app.wsgi_app
        app.wsgi_app = lambda environ, start_response: inner(environ, start_response)  # type: ignore[method-assign]

    async def main() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }
        started = asyncio.Event()
        never = asyncio.Event()
        requested = False

        async def receive() -> dict:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                started.set()

        task = asyncio.ensure_future(app(scope, receive, send))
        await started.wait()
        await asyncio.get_running_loop().run_in_executor(None, fetching.wait, 10)
        for _ in range(2):
            task.cancel()
            await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(task, return_exceptions=True)
        note("served")

    asyncio.run(main())
    app.serving.executor.shutdown()
    steps = [step for step, _ in seen]
    fetched = {thread for step, thread in seen if step.startswith("item") or step == "finally"}
    assert len(fetched) == 1, seen
    return steps


def test_cancelling_a_sync_source_while_it_fetches_is_the_same_on_every_path() -> None:
    """The one primitive that iterates a sync source from the loop
    (``serving.threaded.ThreadedIterator``) behaves the same for a sync view's
    body, an event stream of a sync or an async view, and a body produced
    through a wrapped WSGI entry: cancelled twice while an item is fetched, the
    fetch finishes, the source's ``finally`` runs on its thread, then the
    teardown, all before the request's task ends."""
    expected = ["item 1", "item 2", "finally", "teardown", "served"]
    for path, wrap in [("/body", False), ("/events", False), ("/async-events", False), ("/body", True)]:
        assert _cancel_twice_while_fetching(path, wrap) == expected, (path, wrap)
