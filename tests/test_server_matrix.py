"""Every server and worker model, started for real, serving one app with the
whole feature set (tests/servers/matrix_app.py).

Each server is started once for the feature checks (a module-scoped fixture)
and once more for its shutdown. The app writes its events to a file: the
serving lifecycle, and for each tagged request its body's ``finally`` and its
teardown, whose order and count are checked for a completed stream, a client
that leaves mid-stream and a server that stops with the stream open.
"""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import threading
import time
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trustme
import websockets.sync.client

from support import Servers

SERVERS = Path(__file__).parent / "servers"
PY = sys.executable
BIN = Path(PY).parent
#: The servers' graceful timeout: far above what ending a stream takes, so a
#: stream that ends before it was ended by the app, not cut by the server.
GRACE = 30
#: The graceful timeout of a server that cannot tell the app it is stopping.
SHORT_GRACE = 2
APP = "matrix_app:app"


@dataclass
class Server:
    argv: list[str]
    asgi: bool
    #: HTTP/2 over TLS, with the test's certificate.
    tls: bool = False
    #: Whether the server lets the app know it is stopping; if not, it is run
    #: with ``SHORT_GRACE`` and the streams are cut there (docs/deploying.md).
    tells_app: bool = True
    #: Checks expected to fail until another branch's fix is merged: check -> reason.
    xfail: dict[str, str] = field(default_factory=dict)

    def command(self, certs: tuple[str, str], grace: int) -> list[str]:
        cert, key = certs
        return [a.format(grace=grace, cert=cert, key=key, port="{port}") for a in self.argv]


GUNICORN = [PY, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "--graceful-timeout", "{grace}"]
HYPERCORN = [PY, "-m", "hypercorn", "-b", "127.0.0.1:{port}", "--graceful-timeout", "{grace}"]
HYPERCORN_TLS = [*HYPERCORN, "--certfile", "{cert}", "--keyfile", "{key}"]
UVICORN = [PY, "-m", "uvicorn", "--port", "{port}", "--timeout-graceful-shutdown", "{grace}"]
GRANIAN = [str(BIN / "granian"), "--host", "127.0.0.1", "--port", "{port}", "--workers-kill-timeout", "{grace}"]

GRANIAN_WSGI_STOP = (
    "granian WSGI: SIGTERM is handled on the worker's main thread while requests run on Rust threads, so the app "
    "is not told; an open body is dropped without close(): no finally, no teardown, and the worker is held"
)
WERKZEUG_STOP = "Werkzeug's development server has no graceful shutdown: SIGTERM ends the process at once"

SERVER_LIST: dict[str, Server] = {
    "gunicorn-sync": Server([*GUNICORN, "-w", "4", APP], asgi=False),  # one stream per worker
    "gunicorn-gthread": Server(
        [*GUNICORN, "-k", "gthread", "--threads", "4", "-c", "gunicorn_conf.py", APP], asgi=False
    ),
    "gunicorn-gevent": Server([*GUNICORN, "-k", "gevent", APP], asgi=False),
    "werkzeug": Server(
        [PY, "-m", "tether", "--app", APP, "run", "--wsgi", "--port", "{port}"], asgi=False, tells_app=False,
        xfail={"stop-order": WERKZEUG_STOP, "stop-after_serving": WERKZEUG_STOP},
    ),
    "granian-wsgi": Server(
        [*GRANIAN, "--interface", "wsgi", APP], asgi=False, tells_app=False,
        xfail={"stop-order": GRANIAN_WSGI_STOP, "stop-after_serving": GRANIAN_WSGI_STOP},
    ),
    "uvicorn": Server([*UVICORN, APP], asgi=True),
    "uvicorn-2-workers": Server([*UVICORN, "--workers", "2", APP], asgi=True),
    "gunicorn-uvicorn-worker": Server([*GUNICORN, "-k", "uvicorn_worker.UvicornWorker", APP], asgi=True),
    "hypercorn": Server([*HYPERCORN, APP], asgi=True, tells_app=False),
    "hypercorn-workers-0": Server([*HYPERCORN, "--workers", "0", APP], asgi=True),
    "hypercorn-h2-tls": Server([*HYPERCORN_TLS, APP], asgi=True, tls=True, tells_app=False),
    "hypercorn-h2-tls-workers-0": Server([*HYPERCORN_TLS, "--workers", "0", APP], asgi=True, tls=True),
    "granian-asgi": Server([*GRANIAN, "--interface", "asgi", APP], asgi=True),
    "daphne": Server([PY, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", APP], asgi=True),
}

#: Stream kinds: the route that serves each (``count`` chunks, or endless).
STREAMS = {"gen": "/gen", "agen": "/agen", "sse-sync": "/sse-sync", "sse-async": "/sse-async"}


def cells(check: str, *, asgi_only: bool = False) -> list[t.Any]:
    """The servers a check runs on, each marked xfail where a known fix is missing."""
    params = []
    for name, server in SERVER_LIST.items():
        if asgi_only and not server.asgi:
            continue
        reason = server.xfail.get(check) or server.xfail.get("*")
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def stream_cells(check: str) -> list[t.Any]:
    """``cells`` for each stream kind; a sync source under ASGI waits for the lead's fix."""
    params = []
    for name, server in SERVER_LIST.items():
        for kind in STREAMS:
            reason = server.xfail.get(f"{check}:{kind}") or server.xfail.get(check) or server.xfail.get("*")
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(name, kind, marks=marks, id=f"{name}-{kind}"))
    return params


# -- the servers --------------------------------------------------------------------


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """A certificate for 127.0.0.1 (cert, key) and the CA that signed it."""
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("certs")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    return str(folder / "cert.pem"), str(folder / "key.pem"), str(folder / "ca.pem")


@dataclass
class Running:
    """A started server: how to reach it and where its app writes."""

    name: str
    server: Server
    port: int
    events: Path
    proc: subprocess.Popen[bytes]
    ca: str

    @property
    def base(self) -> str:
        return f"{'https' if self.server.tls else 'http'}://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        verify: t.Any = ssl.create_default_context(cafile=self.ca) if self.server.tls else True
        return httpx.Client(base_url=self.base, http2=self.server.tls, verify=verify, timeout=10)

    def websocket(self, path: str) -> t.Any:
        if self.server.tls:
            context = ssl.create_default_context(cafile=self.ca)
            return websockets.sync.client.connect(f"wss://127.0.0.1:{self.port}{path}", ssl=context, open_timeout=10)
        return websockets.sync.client.connect(f"ws://127.0.0.1:{self.port}{path}", open_timeout=10)

    def lines(self) -> list[str]:
        return self.events.read_text().splitlines() if self.events.exists() else []

    def wait_for(self, predicate: t.Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        """The event lines once ``predicate`` holds of them (waiting up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if predicate(lines):
                return lines
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: the condition never held; events:\n" + "\n".join(self.lines()))


def start(name: str, servers: Servers, folder: Path, certs: tuple[str, str, str], grace: int) -> Running:
    server = SERVER_LIST[name]
    events = folder / "events.txt"
    port = servers(server.command(certs[:2], grace), cwd=SERVERS, env={"EVENTS_FILE": str(events)})
    return Running(name, server, port, events, servers.procs[-1], certs[2])


def stop(servers: Servers) -> None:
    for proc in servers.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in servers.procs:
        try:
            proc.wait(timeout=GRACE + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, certs: tuple[str, str, str]
) -> Iterator[Running]:
    """One start of the server named by the test's parameter, shared by its feature checks."""
    servers = Servers()
    try:
        yield start(request.param, servers, tmp_path_factory.mktemp(request.param), certs, GRACE)
    finally:
        stop(servers)


def indirect(params: list[t.Any]) -> t.Any:
    return pytest.mark.parametrize("running", params, indirect=True)


# -- reading streams ----------------------------------------------------------------


def payload(kind: str, line: str) -> str | None:
    """The chunk a stream line carries, as ``n path tag``; ``None`` for framing lines."""
    if kind.startswith("sse"):
        if not line.startswith("data: "):
            return None
        data = json.loads(line[6:])
        return f"{data['n']} {data['path']} {data['tag']}"
    return line or None


def read_stream(
    client: httpx.Client, kind: str, tag: str, count: int, keep: int | None = None, tick: float = 0.05
) -> list[str]:
    """The chunks of a stream of ``count`` (0: endless), ``tick`` seconds apart;
    with ``keep``, leave after that many."""
    got = []
    with client.stream("GET", f"{STREAMS[kind]}?t={tag}&count={count}&tick={tick}") as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            chunk = payload(kind, line)
            if chunk is not None:
                got.append(chunk)
                if keep is not None and len(got) == keep:
                    break
    return got


def after_another_stream(running: Running, kind: str, tag: str) -> list[str]:
    """The log once a later stream has ended too: a second teardown of ``tag``,
    which would come right after the first, would be in it by then."""
    with running.client() as client:
        assert len(read_stream(client, kind, f"{tag}-after", 1)) == 1
    return running.wait_for(lambda lines: f"teardown {tag}-after" in lines)


def ended_once_in_order(lines: list[str], tag: str) -> bool:
    return lines.count(f"finally {tag}") == 1 and lines.count(f"teardown {tag}") == 1


def assert_finally_then_teardown(lines: list[str], tag: str) -> None:
    assert lines.count(f"finally {tag}") == 1, lines
    assert lines.count(f"teardown {tag}") == 1, lines
    assert lines.index(f"finally {tag}") < lines.index(f"teardown {tag}"), lines


# -- the feature set ----------------------------------------------------------------


@indirect(cells("views"))
def test_sync_and_async_views(running: Running) -> None:
    with running.client() as client:
        for n in range(3):
            assert client.get(f"/sync?n={n}&t=v{n}").text == f"sync {n} v{n}"
            assert client.get(f"/async?n={n}&t=a{n}").text == f"async {n} a{n}"


@indirect(cells("concurrent"))
def test_concurrent_requests_each_see_their_own_request_and_g(running: Running) -> None:
    """Requests that overlap (threads, greenlets or tasks) never see each other's
    ``request`` or ``g``: each waits while the others run, then answers with its own."""
    results: dict[str, str] = {}

    def get(path: str, n: int) -> None:
        with running.client() as client:
            results[f"{path}{n}"] = client.get(f"{path}?n={n}&t=c{n}&sleep=0.3").text

    threads = [threading.Thread(target=get, args=(path, n)) for path in ("/sync", "/async") for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {
        **{f"/sync{n}": f"sync {n} c{n}" for n in range(4)},
        **{f"/async{n}": f"async {n} c{n}" for n in range(4)},
    }


@pytest.mark.parametrize("running, kind", scope="module", argvalues=stream_cells("stream-content"), indirect=["running"])
def test_streamed_bodies_read_request_and_g(running: Running, kind: str) -> None:
    with running.client() as client:
        chunks = read_stream(client, kind, f"s-{kind}", 3)
    assert chunks == [f"{n} {STREAMS[kind]} s-{kind}" for n in (1, 2, 3)]


@pytest.mark.parametrize("running, kind", scope="module", argvalues=stream_cells("completed"), indirect=["running"])
def test_teardown_once_after_the_source_finally_when_a_stream_completes(running: Running, kind: str) -> None:
    tag = f"done-{kind}"
    with running.client() as client:
        assert len(read_stream(client, kind, tag, 4)) == 4
    assert_finally_then_teardown(running.wait_for(lambda lines: f"teardown {tag}" in lines), tag)
    assert_finally_then_teardown(after_another_stream(running, kind, tag), tag)


@pytest.mark.parametrize("running, kind", scope="module", argvalues=stream_cells("disconnect"), indirect=["running"])
def test_teardown_once_after_the_source_finally_when_the_client_leaves(running: Running, kind: str) -> None:
    tag = f"left-{kind}"
    with running.client() as client:
        # The source is between two chunks when the client leaves.
        assert len(read_stream(client, kind, tag, 0, keep=2, tick=0.5)) == 2
    lines = running.wait_for(lambda lines: f"teardown {tag}" in lines and f"finally {tag}" in lines)
    assert_finally_then_teardown(lines, tag)
    assert_finally_then_teardown(after_another_stream(running, kind, tag), tag)


@indirect(cells("websocket", asgi_only=True))
def test_websocket(running: Running) -> None:
    with running.websocket("/ws?t=ws1") as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello ws1"
    assert_finally_then_teardown(running.wait_for(lambda lines: "teardown ws1" in lines), "ws1")


@indirect(cells("spawn"))
def test_spawn_sync_and_async_work(running: Running) -> None:
    with running.client() as client:
        assert client.get("/spawn?n=7").json() == {"sync": "sync job 1 7 True", "async": "async job 2 7"}


@indirect(cells("periodic"))
def test_periodic_service_runs(running: Running) -> None:
    with running.client() as client:
        deadline = time.monotonic() + 20
        while int(client.get("/periodic").text) < 3:
            assert time.monotonic() < deadline, "the periodic service did not run three times"
            time.sleep(0.05)


@indirect(cells("before_serving"))
def test_before_serving_runs_once_per_worker_before_its_first_answer(running: Running) -> None:
    with running.client() as client:
        pids = {client.get("/pid").text for _ in range(6)}
    lines = running.wait_for(lambda lines: all(f"before_serving {pid}" in lines for pid in pids))
    for pid in pids:
        assert lines.count(f"before_serving {pid}") == 1, lines


# -- shutdown -----------------------------------------------------------------------


@dataclass
class Stopped:
    """What a server did when it got SIGTERM with streams and sockets open."""

    server: Server
    #: The kinds (``STREAMS``, and ``ws``) that were open.
    opened: list[str]
    #: Those that ended before the deadline.
    ended: set[str]
    exit_code: int | None
    lines: list[str]


@pytest.fixture(scope="module")
def stopped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, certs: tuple[str, str, str]
) -> Iterator[Stopped]:
    """SIGTERM to the server named by the parameter, with a stream of each kind
    (and on ASGI a WebSocket) open. A server that tells the app it is stopping
    has a graceful timeout of ``GRACE``: a stream that ends well before it was
    ended by the app. Shared by the shutdown checks of that server."""
    name = request.param
    server = SERVER_LIST[name]
    grace = GRACE if server.tells_app else SHORT_GRACE
    servers = Servers()
    try:
        running = start(name, servers, tmp_path_factory.mktemp(f"stop-{name}"), certs, grace)
        opened = [*STREAMS, *(["ws"] if server.asgi else [])]
        ended: set[str] = set()
        barrier = threading.Barrier(len(opened) + 1, timeout=20)
        threads = [
            threading.Thread(target=hold_socket if kind == "ws" else hold, args=(running, kind, barrier, ended), daemon=True)
            for kind in opened
        ]
        for thread in threads:
            thread.start()
        barrier.wait()
        running.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + (grace - 5 if server.tells_app else grace + 10)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        try:
            exit_code: int | None = running.proc.wait(timeout=grace + 10)
        except subprocess.TimeoutExpired:
            exit_code = None
        yield Stopped(server, opened, set(ended), exit_code, running.lines())
    finally:
        stop(servers)


def hold(running: Running, kind: str, barrier: threading.Barrier, ended: set[str]) -> None:
    """Open a stream, wait for its first chunk, then read it to its end."""
    with running.client() as client:
        try:
            with client.stream("GET", f"{STREAMS[kind]}?t=sd-{kind}&count=0") as response:
                lines = response.iter_lines()
                next(line for line in lines if payload(kind, line))
                barrier.wait()
                for _ in lines:
                    pass
        except httpx.HTTPError:
            pass  # cut off by the server: ended too
    ended.add(kind)


def hold_socket(running: Running, kind: str, barrier: threading.Barrier, ended: set[str]) -> None:
    with running.websocket("/ws?t=sd-ws") as ws:
        ws.send("x")
        ws.recv(timeout=10)
        barrier.wait()
        try:
            while True:
                ws.recv(timeout=GRACE)
        except websockets.exceptions.ConnectionClosed:
            ended.add(kind)


def stop_cells(check: str) -> list[t.Any]:
    return [pytest.param(p.values[0], marks=p.marks, id=p.id) for p in cells(f"stop-{check}")]


@pytest.mark.parametrize("stopped", stop_cells("ends"), indirect=True)
def test_sigterm_ends_every_open_stream_and_socket_and_the_process(stopped: Stopped) -> None:
    assert stopped.ended == set(stopped.opened)
    assert stopped.exit_code is not None


def stop_kind_cells() -> list[t.Any]:
    params = []
    for name, server in SERVER_LIST.items():
        for kind in [*STREAMS, *(["ws"] if server.asgi else [])]:
            reason = server.xfail.get(f"stop-order:{kind}") or server.xfail.get("stop-order") or server.xfail.get("*")
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(name, kind, marks=marks, id=f"{name}-{kind}"))
    return params


@pytest.mark.parametrize("stopped, kind", scope="module", argvalues=stop_kind_cells(), indirect=["stopped"])
def test_sigterm_runs_teardown_once_after_the_source_finally(stopped: Stopped, kind: str) -> None:
    assert_finally_then_teardown(stopped.lines, f"sd-{kind}")


@pytest.mark.parametrize("stopped", stop_cells("after_serving"), indirect=True)
def test_sigterm_runs_after_serving_once_per_worker_after_the_teardowns(stopped: Stopped) -> None:
    lines = stopped.lines
    started = {line.split()[1] for line in lines if line.startswith("before_serving")}
    assert started
    for pid in started:
        assert lines.count(f"after_serving {pid}") == 1, lines
    teardowns = [i for i, line in enumerate(lines) if line.startswith("teardown sd-")]
    assert teardowns, lines
    # Each worker's after_serving follows its own teardowns; the last one follows them all.
    assert max(teardowns) < max(i for i, line in enumerate(lines) if line.startswith("after_serving")), lines
