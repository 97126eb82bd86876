"""deploy/: the compose file against the essentials of the Compose
specification (no container engine here), the Dockerfile against the project,
the proxy and gunicorn settings the docs give, and the compose file's commands
run for real, with their environment, against the local Redis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from support import SHARED, need_redis

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def test_the_compose_file_has_the_specs_shape() -> None:
    assert set(COMPOSE) <= {"name", "services", "volumes", "networks", "configs", "secrets"} | {
        key for key in COMPOSE if key.startswith("x-")}
    assert {"redis", "desk", "progress", "worker", "proxy"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        command = service.get("command", [])
        assert isinstance(command, list) and all(isinstance(part, str) for part in command), name
        environment = service.get("environment", {})
        assert isinstance(environment, dict) and all(isinstance(v, str) for v in environment.values()), name
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            depends = dict.fromkeys(depends, {"condition": "service_started"})
        for target, spec in depends.items():
            assert target in SERVICES and spec["condition"] in CONDITIONS, (name, target)
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health, which has no check"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in (COMPOSE.get("volumes") or {}), (name, source)


def test_the_apps_are_built_from_the_project_and_find_redis() -> None:
    for name in ("desk", "progress", "worker"):
        build = SERVICES[name]["build"]
        assert (DEPLOY / build["context"]).resolve() == ROOT and (ROOT / build["dockerfile"]).is_file()
        assert SERVICES[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    desk = SERVICES["desk"]
    assert desk["command"][:4] == ["uvicorn", "examples.trading.app:app", "--workers", "4"]
    assert desk["environment"]["TETHER_BROADCAST_URL"] == "redis://redis:6379/0"
    assert SERVICES["worker"]["command"][:5] == ["tether", "--app", "examples/progress/app.py", "celery", "worker"]
    assert SERVICES["worker"]["environment"] == SERVICES["progress"]["environment"]
    assert SERVICES["progress"]["environment"]["TETHER_REDIS_URL"] == "redis://redis:6379/0"
    # The worker shares the progress pages' database.
    assert set(SERVICES["worker"]["volumes"]) == set(SERVICES["progress"]["volumes"])


def test_the_dockerfile_installs_the_project() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    base = re.fullmatch(r"FROM python:(\d+)\.(\d+)-slim", lines[0])
    assert base and (int(base[1]), int(base[2])) >= (3, 11)
    for line in lines:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    install = next(line for line in lines if "pip install" in line)
    extras = re.search(r'"\.\[([a-z,]+)\]"', install)
    assert extras, install
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"]
    assert set(extras[1].split(",")) <= set(declared)
    # What the build reads besides src/ is in the image before the install.
    copied = {source for line in lines[:lines.index(install)] if line.startswith("COPY ") for source in line.split()[1:-1]}
    assert {"pyproject.toml", "src", project["readme"], *project["license-files"]} <= copied, copied
    assert {"redis", "celery", "examples"} <= set(extras[1].split(","))
    assert any(line.startswith("USER ") for line in lines)
    assert json.loads(next(line for line in lines if line.startswith("CMD "))[4:])[0] == "uvicorn"


def test_the_proxies_stream_and_upgrade() -> None:
    nginx = (DEPLOY / "nginx.conf").read_text()
    for setting in ("proxy_buffering off;", "proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
                    "proxy_set_header Connection $connection_upgrade;", "proxy_read_timeout 1h;"):
        assert nginx.count(setting) == 2, setting
    upstreams = set(re.findall(r"server (\w+):8000;", nginx))
    assert upstreams == {"desk", "progress"} and upstreams <= set(SERVICES)
    assert {f"{port}:{port}" for port in re.findall(r"listen (\d+);", nginx)} == set(SERVICES["proxy"]["ports"])
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "flush_interval -1" in caddy and "read_timeout 1h" in caddy


def gunicorn_settings(path: Path) -> dict[str, object]:
    from gunicorn.config import Config

    config = Config()
    namespace: dict[str, object] = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    for key, value in namespace.items():
        if key in config.settings:
            config.set(key, value)
    return {"worker_class": config.worker_class_str, "graceful_timeout": config.graceful_timeout,
            "hook": namespace.get("post_worker_init")}


def test_the_gunicorn_settings() -> None:
    uvicorn = gunicorn_settings(DEPLOY / "gunicorn.conf.py")
    assert uvicorn["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert uvicorn["graceful_timeout"] > 10  # type: ignore[operator]  # SPAWN_GRACE_PERIOD
    gthread = gunicorn_settings(DEPLOY / "gunicorn_gthread.conf.py")
    assert gthread["worker_class"] == "gthread" and callable(gthread["hook"])


def test_gunicorn_serves_a_websocket_with_the_uvicorn_settings(serve) -> None:  # type: ignore[no-untyped-def]
    from websockets.sync.client import connect

    port = serve([sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"), "-w", "1",
                  "-b", "127.0.0.1:{port}", "tether_app:app"], ROOT / "docs" / "examples" / "compare")
    with connect(f"ws://127.0.0.1:{port}/echo", open_timeout=10) as ws:
        ws.send("deployed")
        assert ws.recv(timeout=10) == "DEPLOYED"


def compose_env(service: str, **overrides: str) -> dict[str, str]:
    """The service's environment, with the compose network's host names made local."""
    env = {key: value.replace("redis://redis:", "redis://127.0.0.1:") for key, value in
           SERVICES[service]["environment"].items()}
    return {**env, **overrides}


def test_the_desks_compose_command_serves_on_redis(serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    need_redis()
    namespace = f"docs-desk-{uuid.uuid4().hex}"
    command = [part if part != "8000" else "{port}" for part in SERVICES["desk"]["command"]]
    command = [sys.executable, "-m", *command]
    command[command.index("--workers") + 1] = "2"
    command[command.index("--host") + 1] = "127.0.0.1"
    port = serve(command, ROOT, env=compose_env(
        "desk", TETHER_DATABASE_URL=f"sqlite:///{tmp_path}/desk.db", TETHER_BROADCAST_NAMESPACE=namespace))
    try:
        login = requests.get(f"http://127.0.0.1:{port}/", timeout=20)
        assert login.status_code == 200 and "password" in login.text.lower()
    finally:
        import redis

        for proc in serve.procs:  # stopped first: its services would write the keys again
            proc.terminate()
            proc.wait(timeout=30)
        client = redis.Redis.from_url(SHARED)
        for key in client.scan_iter(f"tether:{namespace}:*"):
            client.delete(key)


def test_the_workers_compose_command_starts_on_redis(tmp_path: Path) -> None:
    need_redis()
    queue = f"docs-worker-{uuid.uuid4().hex}"
    command = SERVICES["worker"]["command"]
    assert command[0] == "tether"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **compose_env(
        "worker", TETHER_DATABASE_URL=f"sqlite:///{tmp_path}/progress.db",
        TETHER_CELERY=json.dumps({"broker_url": SHARED, "result_backend": SHARED,
                                  "task_default_queue": queue}))}
    worker = subprocess.Popen([sys.executable, "-m", "tether", *command[1:], "-P", "solo", "-n", f"{queue}@%h",
                               "--without-gossip", "--without-mingle"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert worker.stdout is not None
        seen = []
        for line in worker.stdout:
            seen.append(line)
            if "ready." in line or len(seen) > 200:
                break
        assert any("ready." in line for line in seen), "".join(seen)
        assert any(queue in line for line in seen), "".join(seen)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.parametrize("path", ["compose.yaml", "Dockerfile", "nginx.conf", "Caddyfile", "gunicorn.conf.py",
                                  "gunicorn_gthread.conf.py"])
def test_every_deploy_file_is_on_the_deploying_page(path: str) -> None:
    assert f"../deploy/{path}" in (ROOT / "docs" / "deploying.md").read_text()
