"""What test modules share: server processes on free loopback ports, waiting
without timing assertions, the loopback services (Redis, Chromium), and the one
switch that decides what a missing service means. Test modules import from
here (or from a helper module), never from each other
(tests/test_architecture.py checks)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import redis
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "tests" / "servers"

#: The shared Redis: each test keeps to names of its own and deletes them after.
SHARED = "redis://127.0.0.1:6379/0"
#: Debian's Chromium, which Playwright drives (it cannot download its own here).
CHROMIUM = shutil.which("chromium")
#: Chromium's flags for a headless run in a container.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

_ANY_CHAR = st.characters(exclude_categories=())  # surrogates too
#: Channel names: any str, lone surrogates (valid in JSON), NUL, ``*``, ``:``, CR/LF, the empty name.
CHANNELS = st.text(_ANY_CHAR, max_size=30) | st.builds(
    lambda before, lone, after: before + lone + after,
    st.text(_ANY_CHAR, max_size=10), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), st.text(max_size=10),
)


def missing(problem: str, fix: str) -> t.NoReturn:
    """A service the test needs is missing: the test fails under
    ``TETHER_REQUIRE_SERVICES=1`` (as .ci/run sets, where every service must
    be there), and is skipped otherwise. The only reader of that variable."""
    if os.environ.get("TETHER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem}, and TETHER_REQUIRE_SERVICES=1 ({fix}).")
    pytest.skip(f"{problem} ({fix}).")


def reachable(url: str) -> bool:
    """Whether the Redis at ``url`` answers."""
    import redis  # here: modules without Redis tests need not install it

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def need_redis(url: str = SHARED) -> None:
    """Go on only with the Redis at ``url`` reachable (see :func:`missing`)."""
    if not reachable(url):
        missing(f"Redis is not reachable at {url}", "start redis-server to run this test")


def need_chromium() -> str:
    """Chromium's path (see :func:`missing`)."""
    if CHROMIUM is None:
        missing("Chromium is not installed", "apt-get install chromium; .ci/run installs it")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """Server processes started by a test, each on a free loopback port (the ``serve`` fixture)."""

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

    def stop(self) -> None:
        for proc in self.procs:
            terminate(proc)


class Server:
    """One server process of tests/servers on a free loopback port; its output
    goes to a file, and the events its app writes (``EVENTS_FILE``) to another."""

    def __init__(self, command: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.events = tmp_path / "events.txt"
        self.log = tmp_path / "server.log"
        self.port = free_port()
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(SERVERS), str(ROOT / "src")]),
            "EVENTS_FILE": str(self.events),
            **(env or {}),
        }
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [part.format(port=self.port) for part in command],
                cwd=SERVERS, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.proc)

    def lines(self) -> list[str]:
        return self.events.read_text().splitlines() if self.events.exists() else []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        terminate(self.proc)


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM ``proc``, and SIGKILL it if it has not ended within ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def server_process(argv: list[str], **env: str) -> subprocess.Popen[bytes]:
    """``python -m argv`` in tests/servers, on the shared Redis, with ``env``."""
    full_env = {
        **os.environ, "BROADCAST_URL": SHARED, **env,
        "PYTHONPATH": os.pathsep.join([str(SERVERS), str(ROOT / "src")]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", *argv], cwd=SERVERS, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_for(condition: t.Callable[[], object], timeout: float = 20.0) -> None:
    """Until ``condition()`` is true (no timing assertion: the timeout only ends a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def wait_for_lines(path: Path, count: int, timeout: float = 20.0) -> list[str]:
    """Wait until the server has written at least ``count`` lines (no timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"expected {count} lines in {path}, got: {path.read_text() if path.exists() else ''}")


def take(subscription: object, count: int, timeout: float = 10.0) -> list[object]:
    """``count`` messages from a subscription, waiting for them (no timing assertion)."""
    deadline = time.monotonic() + timeout
    while len(subscription.queued()) < count:  # type: ignore[attr-defined]
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {count} messages, got {subscription.queued()}")  # type: ignore[attr-defined]
        time.sleep(0.01)
    return [next(subscription) for _ in range(count)]  # type: ignore[call-overload]


def own_channel(namespaces: t.Iterable[str], suffixes: t.Iterable[str] = ("",)) -> t.Iterator[str]:
    """A channel name of one test's own on the shared Redis (a fixture's
    body: ``yield from own_channel(...)``); its streams in ``namespaces``, with
    each of ``suffixes`` appended, are deleted afterwards (never a FLUSH)."""
    need_redis()
    name = f"test-{uuid.uuid4().hex}"
    yield name
    keys = [f"tether:{ns}:broadcast:{name}{end}" for ns in namespaces for end in suffixes]
    redis.Redis.from_url(SHARED).delete(*keys)
