"""Settings that cannot work stop the server at startup, with their fix; those
that work otherwise than they seem to are warned about once. Each case runs
tests/servers/startup_app.py under a real server, with redis-py (or Celery)
hidden from the process where the case is its absence."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import typing as t
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support import free_port, wait_for_port

SERVERS = Path(__file__).parent / "servers"
SRC = Path(__file__).parent.parent / "src"

#: Code that makes the modules named in ``sys.argv[1]`` (comma-separated) not
#: installed, for the rest of the process.
HIDE = """
import sys
hidden = set(filter(None, sys.argv[1].split(",")))
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
"""
#: ``python -c RUNNER HIDDEN MODULE ARGS...``: ``python -m MODULE ARGS...`` without HIDDEN.
RUNNER = HIDE + """
import runpy
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""

FROM_CLONE = 'pip install -e ".[redis]"'
PUBLISHED = 'pip install "tether[redis]"'
SPLIT = "worker processes"


class Server:
    """A server process of one test, its output in a file read while it runs."""

    def __init__(self, tmp_path: Path, argv: list[str], hidden: str = "", **env: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"server-{self.port}.log"
        self.events = tmp_path / "events.txt"
        full_env = {
            **os.environ, "EVENTS_FILE": str(self.events), **env,
            "PYTHONPATH": os.pathsep.join([str(SERVERS), str(SRC)]),
        }
        full_env.pop("FLASK_RUN_FROM_CLI", None)  # set here by the CLI tests run in process: app.run() would return
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER, hidden, *(a.format(port=self.port) for a in argv)],
                cwd=SERVERS, env=full_env, stdout=out, stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self, word: str) -> list[str]:
        """The events recorded with ``word``, as ``pid word``."""
        text = self.events.read_text() if self.events.exists() else ""
        return [line for line in text.splitlines() if line.split()[1:] == [word]]

    def wait_for(self, condition: t.Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def exit_code(self, timeout: float = 60.0) -> int:
        """The code it exits with, on its own: a server refusing to start."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server did not exit:\n{self.output()}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[t.Callable[..., Server]]:
    started: list[Server] = []

    def start(argv: list[str], hidden: str = "", **env: str) -> Server:
        started.append(Server(tmp_path, argv, hidden, **env))
        return started[-1]

    yield start
    for each in started:
        each.stop()


UVICORN = ["uvicorn", "startup_app:app", "--port", "{port}"]
GUNICORN = ["gunicorn", "-b", "127.0.0.1:{port}", "startup_app:app"]
UVICORN_WORKER = ["gunicorn", "-k", "uvicorn_worker.UvicornWorker", "-b", "127.0.0.1:{port}", "startup_app:app"]
TETHER_WSGI = ["tether", "--app", "startup_app", "run", "--wsgi", "--port", "{port}"]
APP_RUN = ["startup_app", "{port}"]


def test_a_redis_broadcast_without_redis_py_is_refused_with_the_install_command(
    server: t.Callable[..., Server],
) -> None:
    running = server(UVICORN, "redis", APP_BROADCAST_URL="redis://127.0.0.1:6379/0")
    assert running.exit_code() == 3  # uvicorn's "startup failed"
    output = running.output()
    assert "The app cannot start: A redis:// broadcast needs the 'redis' package" in output
    assert FROM_CLONE in output and PUBLISHED in output
    assert "Application startup failed" in output and "No module named" not in output
    assert running.lines("before_serving") == []  # nothing of the app ran


def test_broadcast_and_tether_celery_name_what_to_install_without_their_package() -> None:
    script = (
        "from tether import Broadcast\n"
        "try:\n"
        "    Broadcast('unix:///tmp/redis.sock', namespace='tests')\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e)\n"
        "try:\n"
        "    import tether.celery\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", HIDE + script, "redis,celery"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    redis_line, celery_line = result.stdout.splitlines()
    assert redis_line.startswith("A unix:// broadcast needs the 'redis' package"), result.stdout + result.stderr
    assert FROM_CLONE in redis_line and PUBLISHED in redis_line
    assert celery_line.startswith("tether.celery (Celery with contexts) needs the 'celery' package")
    assert 'pip install -e ".[celery]"' in celery_line and 'pip install "tether[celery]"' in celery_line


def test_a_cluster_service_without_redis_py_is_refused_with_the_install_command(
    server: t.Callable[..., Server],
) -> None:
    running = server(UVICORN, "redis", CLUSTER="1", APP_BROADCAST_URL="redis://127.0.0.1:6379/0")
    assert running.exit_code() == 3
    output = running.output()
    assert "Periodic service cleanup (across=\"cluster\") needs the 'redis' package" in output
    assert FROM_CLONE in output and PUBLISHED in output
    assert running.lines("before_serving") == []


CLUSTER_ON_MEMORY = "Periodic service cleanup runs across the cluster"


@pytest.mark.parametrize("argv", [UVICORN, UVICORN_WORKER], ids=["uvicorn", "gunicorn-uvicorn-worker"])
def test_a_cluster_service_on_memory_stops_an_asgi_server_with_its_fix(
    server: t.Callable[..., Server], argv: list[str]
) -> None:
    running = server(argv, CLUSTER="1")
    assert running.exit_code() == 3  # uvicorn's startup failure; gunicorn's "worker failed to boot"
    output = running.output()
    assert CLUSTER_ON_MEMORY in output and "TETHER_BROADCAST_URL" in output and "from_prefixed_env()" in output
    assert "The app cannot start" in output and "before_serving function failed" not in output
    assert running.lines("before_serving") == []


def test_a_cluster_service_on_memory_fails_each_request_under_a_wsgi_server(server: t.Callable[..., Server]) -> None:
    """A WSGI server starts the app at its first request: that request, and each
    one after, gets a 500 while the log says why; nothing of the app ran."""
    running = server(GUNICORN, CLUSTER="1")
    wait_for_port(running.port, running.proc)
    for _ in range(2):
        assert requests.get(f"http://127.0.0.1:{running.port}/", timeout=10).status_code == 500
    running.wait_for(lambda: running.output().count(CLUSTER_ON_MEMORY) >= 2, "the message at each request")
    assert "StartupRefused" in running.output()
    assert running.lines("before_serving") == [] and running.lines("cleanup") == []


def test_gunicorn_starting_the_app_at_worker_boot_stops_with_the_fix(server: t.Callable[..., Server]) -> None:
    running = server(["gunicorn", "-c", "gunicorn_start_conf.py", *GUNICORN[1:]], CLUSTER="1")
    assert running.exit_code() == 3  # gunicorn: "Worker failed to boot"
    assert CLUSTER_ON_MEMORY in running.output() and "Worker failed to boot" in running.output()


@pytest.mark.parametrize("argv", [TETHER_WSGI, APP_RUN], ids=["tether-run-wsgi", "app.run"])
def test_werkzeugs_server_starts_services_before_the_first_request(
    server: t.Callable[..., Server], argv: list[str]
) -> None:
    running = server(argv, PERIODIC="1")
    wait_for_port(running.port, running.proc)
    running.wait_for(lambda: len(running.lines("market")) >= 2, "periodic run without a request")
    pid = str(running.proc.pid)
    assert [line.split()[0] for line in running.lines("before_serving")] == [pid]


def test_tether_run_wsgi_refuses_to_serve_a_setting_that_cannot_work(server: t.Callable[..., Server]) -> None:
    running = server(TETHER_WSGI, CLUSTER="1")
    assert running.exit_code() == 1
    output = running.output()
    assert f"Error: The app cannot start: {CLUSTER_ON_MEMORY}" in output and "Running on" not in output


@pytest.mark.parametrize(
    ("argv", "server_name"),
    [
        (["uvicorn", "--workers", "2", *UVICORN[1:]], "uvicorn"),
        (["gunicorn", "-w", "2", *UVICORN_WORKER[1:]], "gunicorn"),
        (["hypercorn", "--workers", "2", "-b", "127.0.0.1:{port}", "startup_app:app"], "hypercorn"),
    ],
    ids=["uvicorn", "gunicorn-uvicorn-worker", "hypercorn"],
)
def test_several_workers_on_a_memory_broadcast_are_warned_about_once_each(
    server: t.Callable[..., Server], argv: list[str], server_name: str
) -> None:
    running = server(argv, PERIODIC="1")
    # Each worker warns at startup, before before_serving; its broadcast is made
    # later, at its service's first run, and says nothing more.
    running.wait_for(lambda: len({line.split()[0] for line in running.lines("market")}) == 2, "both workers' runs")
    warnings = [line for line in running.output().splitlines() if SPLIT in line]
    assert len(warnings) == 2, running.output()
    for warning in warnings:
        assert f"served by 2 worker processes ({server_name})" in warning
        assert "its own periodic services (market)" in warning and "TETHER_BROADCAST_URL" in warning


def test_a_gunicorn_wsgi_worker_warns_when_its_broadcast_is_made(server: t.Callable[..., Server]) -> None:
    """No periodic service: the warning comes when a request first uses the broadcast."""
    running = server(["gunicorn", "-w", "2", *GUNICORN[1:]])
    wait_for_port(running.port, running.proc)
    assert requests.get(f"http://127.0.0.1:{running.port}/", timeout=10).status_code == 200
    assert SPLIT not in running.output()
    assert requests.post(f"http://127.0.0.1:{running.port}/publish", timeout=10).status_code == 200
    running.wait_for(lambda: SPLIT in running.output(), "the warning")
    assert "served by 2 worker processes (gunicorn)" in running.output()


def test_one_worker_is_not_warned_about(server: t.Callable[..., Server]) -> None:
    running = server(UVICORN, PERIODIC="1")
    running.wait_for(lambda: len(running.lines("market")) >= 2, "periodic runs")
    assert SPLIT not in running.output()


UNPREFIXED = "The environment sets BROADCAST_URL, but the app's BROADCAST_URL setting is not that value"
NOT_READ = "The environment sets TETHER_BROADCAST_URL, but the app's BROADCAST_URL setting is not that value"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BROADCAST_URL": "redis://127.0.0.1:6379/0"}, UNPREFIXED),
        ({"BROADCAST_URL": "redis://127.0.0.1:6379/0", "FROM_PREFIXED_ENV": "1"}, UNPREFIXED),
        ({"TETHER_BROADCAST_URL": "redis://127.0.0.1:6379/0"}, NOT_READ),
        ({"TETHER_BROADCAST_URL": "redis://127.0.0.1:6379/0", "FROM_PREFIXED_ENV": "1"}, None),
        ({"BROADCAST_URL": "memory://"}, None),
    ],
    ids=["bare", "bare-with-from-prefixed-env", "prefixed-unread", "prefixed-read", "bare-same-value"],
)
def test_a_setting_in_the_environment_the_app_does_not_read_is_warned_about(
    server: t.Callable[..., Server], env: dict[str, str], expected: str | None
) -> None:
    running = server(UVICORN, **env)
    running.wait_for(lambda: bool(running.lines("before_serving")), "startup")
    output = running.output()
    if expected is None:
        assert "The environment sets" not in output
        return
    assert output.count(expected) == 1
    if expected == UNPREFIXED:
        assert "set TETHER_BROADCAST_URL instead" in output
    else:
        assert "call app.config.from_prefixed_env() after Tether(__name__)" in output


def test_messages_about_a_broadcast_url_never_show_its_password() -> None:
    from tether import Broadcast, Tether

    for url in ("http://:s3cret@127.0.0.1:6379/0", "redis://user:s3cret@127.0.0.1:6379/0"):
        with pytest.raises(ValueError) as refused:
            Broadcast(url)
        assert "s3cret" not in str(refused.value) and ":***@127.0.0.1" in str(refused.value)
    app = Tether(__name__)
    app.config["BROADCAST_URL"] = "http://:s3cret@127.0.0.1/0"

    @app.periodic(1, across="cluster")
    def cleanup() -> None: ...

    with pytest.raises(ValueError, match="runs across the cluster") as refused:
        app.periodic_services[f"{__name__}.{cleanup.__qualname__}"].check()
    assert "s3cret" not in str(refused.value)
