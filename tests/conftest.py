"""The fixtures every test module may use; the helpers they share are in support.py."""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tether
from support import SHARED, Servers, free_port, missing, need_chromium, need_redis, reachable


@pytest.fixture(params=["wsgi", "asgi"])
def protocol(request: pytest.FixtureRequest) -> str:
    """Shared behaviour is tested through both adapters."""
    return request.param


@pytest.fixture
def app(protocol: str) -> tether.Tether:
    app = tether.Tether("test_app", root_path=str(Path(__file__).parent))
    app.config.update(TESTING=True, SECRET_KEY="test key")
    if protocol == "asgi":
        app.test_client = functools.partial(app.test_client, asgi=True)  # type: ignore[method-assign]
    return app


@pytest.fixture
def client(app: tether.Tether) -> tether.testing.TetherClient:
    return app.test_client()


@pytest.fixture
def serve() -> Iterator[Servers]:
    servers = Servers()
    yield servers
    servers.stop()


@pytest.fixture
def chromium_path() -> str:
    """Debian's Chromium, for Playwright (skip or fail without it: ``support.missing``)."""
    return need_chromium()


@pytest.fixture
def token() -> Iterator[str]:
    """A name of this test's own on the shared Redis; its keys are deleted after."""
    import redis  # here: only the tests that use this fixture need it

    need_redis()
    name = f"ns{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(SHARED)
    for key in client.scan_iter(match=f"*{name}*", count=1000):
        client.delete(key)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, object, object]]:
    """A redis-server of this test's own on a free port, with start and stop."""
    server = shutil.which("redis-server")
    if server is None:
        missing("redis-server is not installed", "apt-get install redis-server")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        deadline = time.monotonic() + 10
        while not reachable(f"redis://127.0.0.1:{port}/0"):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop() -> None:
        proc = procs[-1]
        proc.terminate()
        proc.wait(10)

    start()
    yield f"redis://127.0.0.1:{port}/0", start, stop
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()



#: The Flask project is run by test_compat.py, against Flask and on tether.
collect_ignore = ["flask_project"]
