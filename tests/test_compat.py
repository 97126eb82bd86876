"""alias_flask(): Flask code and its own tests run unchanged on tether."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).parent / "flask_project"

RUN_ALIASED = """
import sys
from tether.compat import alias_flask
alias_flask()
import flask, tether
assert flask.Flask is tether.Tether, flask.Flask
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", sys.argv[1]]))
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, str(PROJECT)], cwd=PROJECT, capture_output=True, text=True, timeout=120
    )


def test_flask_project_passes_on_tether() -> None:
    result = run(RUN_ALIASED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout


def test_flask_project_tests_are_genuine_flask_tests() -> None:
    pytest.importorskip("flask")
    result = run("import sys, pytest, flask; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', sys.argv[1]]))")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout


def test_alias_modules_and_missing_names() -> None:
    code = """
from tether.compat import alias_flask
alias_flask()
import flask, tether
from flask.globals import request, current_app
from flask.ctx import AppContext
from flask.wrappers import Request, Response
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from flask.json import jsonify
from flask.json.provider import DefaultJSONProvider
from flask.helpers import url_for
from flask.config import Config
from flask.app import Flask
from flask.signals import request_started
from flask.views import MethodView
from flask.blueprints import Blueprint
assert request is tether.request and Flask is tether.Tether and FlaskClient is tether.testing.TetherClient
assert AppContext is tether.contexts.ctx.AppContext and Config is tether.Config
for stmt, error in [("import flask.no_such_module", ModuleNotFoundError), ("flask.no_such_thing", AttributeError)]:
    try:
        exec(stmt)
    except error as e:
        assert "tether has no equivalent of 'flask.no_such_" in str(e), e
    else:
        raise AssertionError(stmt)
print("ok")
"""
    result = run(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


def test_the_alias_reports_the_flask_version_tether_follows() -> None:
    code = (
        "from tether.compat import alias_flask, FLASK_VERSION; alias_flask(); import flask; "
        "assert flask.__version__ == FLASK_VERSION == '3.1.3', flask.__version__"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_flask_modules_extensions_import_from_are_there() -> None:
    code = "\n".join([
        "from tether.compat import alias_flask; alias_flask()",
        "from flask.logging import create_logger, default_handler, has_level_handler, wsgi_errors_stream",
        "from flask.helpers import get_debug_flag, get_load_dotenv, get_template_attribute, stream_with_context",
        "from flask.app import Rule, Request, Response, BuildError, Headers, HTTPException, request, session",
        "import flask, tether",
        "assert flask.app.Request is tether.Request and flask.app.Flask is tether.Tether",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_public_name_of_every_flask_module_resolves_under_the_alias() -> None:
    # Flask's own modules, read from the installed Flask, are the list to match.
    code = """
import importlib, pkgutil, types
import flask
modules = ["flask"] + [m.name for m in pkgutil.walk_packages(flask.__path__, "flask.") if not m.name.endswith("__main__")]
names = {
    name: [n for n, v in vars(importlib.import_module(name)).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)]
    for name in modules
}
from tether.compat import alias_flask
alias_flask()
missing = []
for name, public in names.items():
    module = importlib.import_module(name)
    for attribute in public:
        try:
            getattr(module, attribute)
        except (AttributeError, ImportError):
            missing.append(f"{name}.{attribute}")
assert len(names) >= 20, sorted(names)
assert not missing, missing
import flask.cli, flask.typing, flask.sansio.app
assert flask.cli.FlaskGroup is flask.cli.TetherGroup and flask.sansio.app.App.__name__ == "Application"
print("ok")
"""
    result = run(code)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


#: A ``sitecustomize`` that makes the modules in $HIDE_MODULES not installed, in
#: every Python process started with its folder on PYTHONPATH.
HIDING_SITECUSTOMIZE = """
import os, sys
hidden = set(filter(None, os.environ.get("HIDE_MODULES", "").split(",")))
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
"""

HINT = "run this command as 'python -m tether.compat --app notes init-db'"


def tether_command(tmp_path: Path, argv: list[str], hide_flask: bool) -> subprocess.CompletedProcess[str]:
    """The installed ``tether`` script (or ``python -m`` argv[0]) on the Flask
    project, with this checkout's tether, and Flask hidden if asked."""
    (tmp_path / "sitecustomize.py").write_text(HIDING_SITECUSTOMIZE)
    env = {
        **os.environ, "HIDE_MODULES": "flask" if hide_flask else "",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PROJECT.parent.parent / "src")]),
    }
    script = Path(sys.executable).parent / argv[0]
    command = [str(script), *argv[1:]] if script.exists() else [sys.executable, "-m", *argv]
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)


def test_the_tether_command_on_flask_code_without_flask_says_how_to_run_it(tmp_path: Path) -> None:
    result = tether_command(tmp_path, ["tether", "--app", "notes", "init-db"], hide_flask=True)
    assert result.returncode != 0
    assert "While importing 'notes': it imports flask, and Flask is not installed." in result.stderr
    assert HINT in result.stderr and "alias_flask()" in result.stderr
    hinted = subprocess.run(
        [sys.executable, "-m", "tether.compat", "--app", "notes", "init-db"], cwd=PROJECT, capture_output=True,
        text=True, timeout=60, env={**os.environ, "HIDE_MODULES": "flask", "PYTHONPATH": os.pathsep.join(
            [str(tmp_path), str(PROJECT.parent.parent / "src")])},
    )
    assert hinted.returncode == 0, hinted.stderr
    assert hinted.stdout == "Initialized the database.\n"


def test_the_tether_command_on_an_app_of_the_installed_flask_says_how_to_run_it(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    result = tether_command(tmp_path, ["tether", "--app", "notes", "init-db"], hide_flask=False)
    assert result.returncode != 0
    assert "Module 'notes' makes a Flask app (the installed Flask's), not a tether one." in result.stderr
    assert HINT in result.stderr
