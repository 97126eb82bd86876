"""Flask's private helpers that extensions import (``flask.app._make_timedelta``,
``flask.helpers._prepare_send_file_kwargs``, ``flask.cli._set_debug``, ...):
each is run on the same inputs under Flask and under tether's alias, each side
in a process of its own, and what they give must be the same.
(tests/test_surface.py checks that they exist with Flask's signatures.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import json, os, sys, uuid
from datetime import timedelta
if sys.argv[1] == "tether":
    from tether.compat import alias_flask
    alias_flask()
import click, click.testing, jinja2
import flask, flask.cli, flask.debughelpers, flask.testing
from flask.app import _make_timedelta
from flask.json.tag import TaggedJSONSerializer

root = sys.argv[2]
out = {}
out["make_timedelta"] = [repr(_make_timedelta(v)) for v in (None, 5, 2.5, timedelta(days=1))]
out["sentinels"] = [flask.app._sentinel is not None, flask.blueprints._sentinel is not None]
out["path_is_ancestor"] = [flask.cli._path_is_ancestor(a, b) for a, b in
                           [("/a", "/a/b"), ("/a", "/ab"), ("/a/", "/a/b"), ("/a", "/a"), ("/a/b", "/a")]]
out["split"] = [flask.helpers._split_blueprint_path(n) for n in ("a", "a.b", "a.b.c")]
out["split_shared"] = flask.wrappers._split_blueprint_path is flask.helpers._split_blueprint_path
out["sha1"] = [flask.sessions._lazy_sha1(b"x").hexdigest(), flask.sessions._lazy_sha1().hexdigest(),
               flask.sessions.SecureCookieSessionInterface.digest_method(b"x").hexdigest()]
out["werkzeug"] = flask.testing._get_werkzeug_version() == __import__("importlib.metadata").metadata.version("werkzeug")
g = flask.ctx._AppCtxGlobals()
g.here = 1
try:
    g.__getattr__("missing")
except AttributeError as e:
    out["g_missing"] = repr(e)
out["g_here"] = g.__getattr__("here")
out["dump_loader"] = list(flask.debughelpers._dump_loader_info(jinja2.FileSystemLoader(["t1", "t2"])))
serializer = TaggedJSONSerializer()
value = {"a": [(1, 2), b"by", {"u": uuid.UUID(int=7)}], " t": [1]}
out["untag_scan"] = repr(serializer._untag_scan(json.loads(serializer.dumps(value))))

app = flask.Flask("probe", root_path=root)
app.config["USE_X_SENDFILE"] = True
app.register_blueprint(flask.Blueprint("bp", "probe", root_path=root, template_folder="bp_templates"))
with app.test_request_context("/"):
    kwargs = flask.helpers._prepare_send_file_kwargs(path_or_file="f.txt", max_age=None, etag=False)
    out["send_file_kwargs"] = sorted(kwargs)
    out["send_file_values"] = [kwargs["max_age"] == app.get_send_file_max_age, kwargs["use_x_sendfile"],
                               kwargs["_root_path"] == root, kwargs["environ"] is flask.request.environ,
                               kwargs["response_class"] is app.response_class, kwargs["etag"]]
    given = flask.helpers._prepare_send_file_kwargs(max_age=9)
    out["send_file_max_age"] = given["max_age"]
    out["ctx_processor"] = [type(v).__name__ for k, v in sorted(flask.templating._default_template_ctx_processor().items())
                            if k in ("g", "request")]
loader = app.jinja_env.loader
out["iter_loaders"] = [s.name for s, _ in loader._iter_loaders("page.html")]
out["source_fast"] = loader._get_source_fast(app.jinja_env, "page.html")[0]
try:
    loader._get_source_fast(app.jinja_env, "nowhere.html")
except jinja2.TemplateNotFound as e:
    out["source_missing"] = str(e)

@click.command()
@click.option("--debug/--no-debug", callback=flask.cli._set_debug, expose_value=False)
def command():
    click.echo(os.environ.get("FLASK_DEBUG", "<unset>"))

runner = click.testing.CliRunner()
out["set_debug"] = [runner.invoke(command, args, env={"FLASK_DEBUG": None}).output.strip()
                    for args in ([], ["--debug"], ["--no-debug"])]
env_file = os.path.join(root, "private.env")
ctx = click.Context(click.Command("x"), obj=flask.cli.ScriptInfo(load_dotenv_defaults=False))
out["env_file"] = [flask.cli._env_file_callback(ctx, click.Option(["-e"]), env_file),
                   os.environ.get("PRIVATE_HELPERS_VALUE"), flask.cli._env_file_callback(ctx, click.Option(["-e"]), None)]
print(json.dumps(out))
'''


def outcomes(side: str, root: Path) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", SCRIPT, side, str(root)], capture_output=True, text=True,
                            timeout=60, cwd=root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_flasks_private_helpers_behave_the_same_on_tether(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    pytest.importorskip("dotenv")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("the app's page")
    (tmp_path / "bp_templates").mkdir()
    (tmp_path / "bp_templates" / "page.html").write_text("the blueprint's page")
    (tmp_path / "private.env").write_text("PRIVATE_HELPERS_VALUE=from the file\n")
    flask, tether = outcomes("flask", tmp_path), outcomes("tether", tmp_path)
    assert flask["source_fast"] == "the app's page"  # the comparison runs the helpers for real
    assert flask["env_file"][1] == "from the file"
    assert tether == flask
