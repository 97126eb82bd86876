"""The `tether` command: app discovery, routes, shell, app commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from support import free_port, wait_for_port
from tether.cli.commands import cli
from tether.cli.discovery import NoAppException, ScriptInfo

APPS = Path(__file__).parent / "cli_apps"


@pytest.fixture(autouse=True)
def in_apps_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(APPS)
    monkeypatch.syspath_prepend(str(APPS))
    monkeypatch.delenv("TETHER_APP", raising=False)


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> object:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def test_routes_lists_rules() -> None:
    result = invoke("--app", "factory_app:create_app()", "routes")
    lines = result.output.splitlines()  # type: ignore[attr-defined]
    assert lines[0].split() == ["Endpoint", "Methods", "Rule"]
    assert any(line.split() == ["hello", "GET", "/hello"] for line in lines)
    assert any(line.split() == ["item", "POST", "/items/<int:id>"] for line in lines)
    assert any(line.split() == ["feed", "WEBSOCKET", "/ws"] for line in lines)


@pytest.mark.parametrize(
    ("target", "name"),
    [("factory_app", "factory"), ("factory_app:create_app('custom')", "custom"), ("app:app", "default_app"), ("app", "default_app")],
)
def test_app_discovery(target: str, name: str) -> None:
    assert ScriptInfo(target).load_app().name == name


def test_app_from_environment_and_default_file() -> None:
    assert invoke("whoami", env={"TETHER_APP": "factory_app"}).output == "app=factory\n"  # type: ignore[attr-defined]
    assert ScriptInfo().load_app().name == "default_app"


def test_discovery_errors() -> None:
    with pytest.raises(NoAppException, match="Could not import 'missing_module'"):
        ScriptInfo("missing_module").load_app()
    with pytest.raises(NoAppException, match="Failed to find attribute 'nope'"):
        ScriptInfo("factory_app:nope").load_app()


def test_shell_has_an_app_context() -> None:
    env = {**os.environ, "TETHER_APP": "factory_app", "PYTHONPATH": str(APPS)}
    result = subprocess.run(
        [sys.executable, "-m", "tether", "shell"],
        input="from tether import current_app, g\nprint('APP', current_app.name, app is current_app._get_current_object())\n",
        capture_output=True, text=True, cwd=APPS, env=env, timeout=60,
    )
    assert "APP factory True" in result.stdout, result.stdout + result.stderr


def test_help_lists_app_commands() -> None:
    output = invoke("--app", "factory_app", "--help").output  # type: ignore[attr-defined]
    for command in ("run", "routes", "shell", "whoami"):
        assert command in output


def test_commands_added_with_add_command_run_in_the_app_context() -> None:
    # As under Flask's `flask` command. (Flask's test_cli_runner() does not push
    # one for such a command, and neither does tether's.)
    assert invoke("--app", "factory_app", "init-db").output == "initialized factory\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize("debug", [True, False])
def test_run_under_uvicorn_shows_the_traceback_only_in_debug_mode(debug: bool) -> None:
    port = free_port()
    env = {**os.environ, "TETHER_APP": "factory_app", "PYTHONPATH": str(APPS)}
    flag = "--debug" if debug else "--no-debug"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether", "run", flag, "--no-reload", "--port", str(port)],
        cwd=APPS, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, proc)
        response = requests.get(f"http://127.0.0.1:{port}/boom", timeout=10)
        assert response.status_code == 500
        if debug:
            assert "LookupError: the boom view failed" in response.text
            assert "Traceback" in response.text and "factory_app.py" in response.text
            css = requests.get(f"http://127.0.0.1:{port}/?__debugger__=yes&cmd=resource&f=style.css", timeout=10)
            assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
        else:
            assert "boom view failed" not in response.text and "Traceback" not in response.text
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert "LookupError: the boom view failed" in output  # the server logs it either way


def test_the_flask_command_on_tether_reads_flask_app() -> None:
    # `python -m tether.compat` is `flask` with the alias installed.
    env = {**os.environ, "FLASK_APP": "factory_app", "PYTHONPATH": str(APPS)}
    env.pop("TETHER_APP", None)
    result = subprocess.run(
        [sys.executable, "-m", "tether.compat", "routes"], capture_output=True, text=True, cwd=APPS, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert any(line.split() == ["feed", "WEBSOCKET", "/ws"] for line in result.stdout.splitlines())
    version = subprocess.run(
        [sys.executable, "-m", "tether.compat", "--version"], capture_output=True, text=True, cwd=APPS, env=env, timeout=60
    )
    assert "(Flask 3.1.3 API)" in version.stdout
