from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tether

ROOT = Path(__file__).resolve().parent.parent


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"server exited early ({proc.returncode}):\n{out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s")


class Servers:
    """Server processes started by a test, each on a free loopback port."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def __call__(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> int:
        """Start ``argv`` (``{port}`` filled in) and wait until it listens; returns the port."""
        port = free_port()
        full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT / "src")]), **(env or {})}
        proc = subprocess.Popen(
            [a.format(port=port) for a in argv], cwd=cwd, env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        wait_for_port(port, proc)
        return port


@pytest.fixture
def serve() -> Iterator[Servers]:
    servers = Servers()
    yield servers
    for proc in servers.procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()



#: The Flask project is run by test_compat.py, against Flask and on tether.
collect_ignore = ["flask_project"]
