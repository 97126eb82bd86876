"""Short scripts written against Flask, each run twice: on Flask 3.1.3 and with
``flask`` aliased to tether. Both runs must print the same thing. Each script is
the rule behind one way Flask extensions broke on tether, checked over the whole
of what Flask offers (every flask module, every Jinja global) where there is one.
"""

from __future__ import annotations

import importlib.metadata
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

flask = pytest.importorskip("flask")

SRC = Path(__file__).resolve().parent.parent / "src"
ALIAS = "from tether.compat import alias_flask\nalias_flask()\n"

#: Every module of the installed Flask, the surface the alias stands in for.
FLASK_MODULES = ["flask"] + sorted(
    m.name for m in pkgutil.walk_packages(flask.__path__, "flask.") if not m.name.endswith("__main__")
)


def run(script: str, *args: str, aliased: bool) -> str:
    code = (ALIAS if aliased else "") + textwrap.dedent(script)
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
    )
    framework = "tether" if aliased else "flask"
    assert result.returncode == 0, f"on {framework}:\n{result.stdout}{result.stderr}"
    return result.stdout


def same_on_both(script: str, *args: str) -> str:
    """Run ``script`` on Flask, then on tether; what both print (asserted equal)."""
    on_flask = run(script, *args, aliased=False)
    on_tether = run(script, *args, aliased=True)
    assert on_tether == on_flask, f"flask printed:\n{on_flask}\ntether printed:\n{on_tether}"
    return on_flask


def test_the_scripts_run_on_the_real_flask() -> None:
    assert importlib.metadata.version("flask") == "3.1.3"
    assert "tether" not in run("import flask; print(flask.Flask.__module__)", aliased=False)
    assert "tether" in run("import flask; print(flask.Flask.__module__)", aliased=True)


def test_a_missing_name_is_an_attribute_error_on_every_flask_module() -> None:
    script = """
    import importlib, sys
    for name in sys.argv[1:]:
        module = importlib.import_module(name)
        try:
            module.anything_missing
        except AttributeError:
            caught = "AttributeError"
        print(name, hasattr(module, "_quart_patched"), getattr(module, "anything_missing", "default"), caught)
    try:
        from flask import no_such_thing
    except ImportError as e:
        print(type(e).__name__)
    try:
        from flask.app import no_such_thing
    except ImportError as e:
        print(type(e).__name__)
    try:
        import flask.no_such_module
    except ImportError as e:
        print(type(e).__name__, e.name)
    """
    printed = same_on_both(script, *FLASK_MODULES)
    assert printed.count("False default AttributeError") == len(FLASK_MODULES) >= 20
    assert printed.endswith("ImportError\nImportError\nModuleNotFoundError flask.no_such_module\n")


def test_the_jinja_environment_offers_what_flasks_does() -> None:
    script = """
    import flask
    app = flask.Flask(__name__)
    env = app.jinja_env
    for mapping in ("globals", "filters", "tests"):
        print(mapping, sorted(getattr(env, mapping)))
    print(env.autoescape("a.html"), env.autoescape("a.txt"), env.auto_reload, sorted(env.extensions))
    print(type(env.undefined).__name__, env.undefined.__name__)
    """
    same_on_both(script)


def test_request_session_g_and_config_work_in_an_imported_macro(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "macros.html").write_text(
        "{% macro here() %}{{ request.path }} {{ session.get('who') }} {{ g.seen }} {{ config.NAME }} "
        "{{ url_for('index') }} {{ get_flashed_messages()|join(',') }}{% endmacro %}"
    )
    (templates / "page.html").write_text('{% from "macros.html" import here %}[{{ here() }}]')
    script = """
    import sys, flask
    app = flask.Flask(__name__, template_folder=sys.argv[1])
    app.config.update(SECRET_KEY="k", NAME="demo")
    @app.route("/page")
    def index():
        flask.session["who"] = "ann"
        flask.g.seen = 3
        flask.flash("hi")
        return flask.render_template("page.html")
    print(app.test_client().get("/page").get_data(as_text=True))
    """
    assert same_on_both(script, str(templates)) == "[/page ann 3 demo /page hi]\n"


def test_the_request_context_session_can_be_replaced_through_underscore_session() -> None:
    script = """
    import flask
    from flask.globals import request_ctx
    from flask.sessions import SessionMixin
    class Own(dict, SessionMixin):
        pass
    app = flask.Flask(__name__)
    app.secret_key = "k"
    own = Own()
    @app.route("/")
    def index():
        ctx = request_ctx._get_current_object()
        ctx._session = own
        flask.session["n"] = 1
        return str(ctx._session is own and ctx.session is own and flask.session._get_current_object() is own)
    with app.test_client() as client:
        print(client.get("/").get_data(as_text=True), own, own.accessed, client.get_cookie("session") is not None)
    """
    assert same_on_both(script) == "True {'n': 1} True True\n"


def test_every_attribute_of_flasks_contexts_can_be_assigned() -> None:
    # Flask's contexts keep their state in plain attributes, which extensions
    # assign; a read-only property on tether's breaks them.
    app = flask.Flask(__name__)
    with app.test_request_context() as ctx:
        names = sorted(set(vars(ctx)) | set(vars(flask.globals.app_ctx._get_current_object())))
    script = """
    import sys, flask
    from flask.globals import app_ctx, request_ctx
    app = flask.Flask(__name__)
    with app.test_request_context():
        for ctx in (request_ctx._get_current_object(), app_ctx._get_current_object()):
            for name in sys.argv[1:]:
                if hasattr(type(ctx), name) or name in vars(ctx):
                    setattr(ctx, name, getattr(ctx, name))
    print("assigned")
    """
    assert "_session" in names and "request" in names
    assert same_on_both(script, *names) == "assigned\n"


def test_an_app_context_opened_inside_a_preserving_client_around_a_request() -> None:
    script = """
    import flask
    app = flask.Flask(__name__)
    @app.route("/")
    def index():
        flask.g.seen = "in view"
        return "ok"
    with app.test_client() as client:
        with app.app_context():
            print(client.get("/").get_data(as_text=True), flask.g.seen, flask.request.path)
        print(flask.request.path, flask.g.get("seen"))
    print(flask.has_request_context(), flask.has_app_context())
    """
    same_on_both(script)


def test_a_blueprint_gives_its_own_setup_state() -> None:
    script = """
    import flask
    from flask.blueprints import BlueprintSetupState
    class Prefixed(BlueprintSetupState):
        def __init__(self, *args):
            super().__init__(*args)
            self.url_defaults = {**self.url_defaults, "v": 1}
            self.url_prefix = self.url_prefix.upper()

        def add_url_rule(self, rule, endpoint=None, view_func=None, **options):
            super().add_url_rule("/extra" + rule, endpoint, view_func, **options)
    class Own(flask.Blueprint):
        def make_setup_state(self, app, options, first_registration=False):
            print("state", type(self).__name__, sorted(options), first_registration)
            return Prefixed(self, app, options, first_registration)
    bp = Own("bp", __name__, static_folder="static")
    bp.record(lambda state: print("recorded", type(state).__name__))
    @bp.route("/x")
    def x(v):
        return f"x {v}"
    inner = Own("inner", __name__)
    inner.add_url_rule("/y", view_func=lambda v: "y", endpoint="y")
    bp.register_blueprint(inner, url_prefix="/in")
    app = flask.Flask(__name__)
    app.register_blueprint(bp, url_prefix="/p")
    app.register_blueprint(bp, url_prefix="/q", name="again")
    print(sorted((r.rule, r.endpoint, r.defaults) for r in app.url_map.iter_rules()))
    print(app.test_client().get("/P/extra/x").get_data(as_text=True))
    """
    printed = same_on_both(script)
    assert printed.endswith("x 1\n") and "('/P/extra/x', 'bp.x', {'v': 1})" in printed and "('/P/IN/extra/y', 'bp.inner.y', {'v': 1})" in printed
