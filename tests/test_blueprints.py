"""Blueprints: prefixes, endpoint names, scoped hooks and handlers, nesting."""

from __future__ import annotations

import pytest

import tether
from tether import Blueprint, g, request, url_for


def test_blueprint_routes_hooks_and_handlers(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    bp = Blueprint("admin", __name__, url_prefix="/admin")
    calls: list[str] = []

    @bp.before_request
    def bp_before() -> None:
        calls.append("bp-before")

    @bp.before_app_request
    def app_before() -> None:
        calls.append("app-before")

    @bp.after_request
    def bp_after(response: tether.Response) -> tether.Response:
        response.headers["X-BP"] = "1"
        return response

    @bp.errorhandler(404)
    def bp_404(e: Exception) -> tuple[str, int]:
        return "admin missing", 404

    @bp.route("/")
    def index() -> str:
        return f"{request.blueprint} {request.endpoint} {url_for('.index')} {url_for('.user', id=2)}"

    @bp.route("/user/<int:id>")
    def user(id: int) -> str:
        tether.abort(404)

    app.add_url_rule("/", "root", lambda: "root")
    app.register_blueprint(bp)

    response = client.get("/admin/")
    assert response.text == "admin admin.index /admin/ /admin/user/2" and response.headers["X-BP"] == "1"
    assert calls == ["app-before", "bp-before"]
    calls.clear()
    root = client.get("/")
    assert root.text == "root" and "X-BP" not in root.headers and calls == ["app-before"]
    assert client.get("/admin/user/2").text == "admin missing"


def test_nested_blueprints_and_url_defaults(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    parent = Blueprint("parent", __name__, url_prefix="/p")
    child = Blueprint("child", __name__, url_prefix="/c")

    @parent.before_request
    def parent_before() -> None:
        g.trail = ["parent"]

    @child.before_request
    def child_before() -> None:
        g.trail.append("child")

    @child.route("/<int:n>")
    def show(n: int) -> str:
        return f"{request.blueprints} {g.trail} {url_for('parent.child.show', n=n + 1)}"

    parent.register_blueprint(child)
    app.register_blueprint(parent)
    app.register_blueprint(Blueprint("lang", __name__, url_defaults={"lang": "en"}))
    assert client.get("/p/c/1").text == "['parent.child', 'parent'] ['parent', 'child'] /p/c/2"


def test_blueprint_name_rules(app: tether.Tether) -> None:
    with pytest.raises(ValueError, match="dot"):
        Blueprint("a.b", __name__)
    bp = Blueprint("dup", __name__)
    app.register_blueprint(bp)
    with pytest.raises(ValueError, match="already registered"):
        app.register_blueprint(bp)
    app.register_blueprint(bp, name="dup2")
    assert set(app.blueprints) == {"dup", "dup2"}


@pytest.mark.parametrize(("cli_group", "where"), [((), ["bp", "hello"]), (("tools",), ["tools", "hello"]),
                                                  ((None,), ["hello"])])
def test_blueprint_commands_join_the_group_cli_group_names(cli_group: tuple[str | None, ...], where: list[str]) -> None:
    # Flask's positional order: cli_group is the tenth parameter; left out, the group is the blueprint's name.
    bp = Blueprint("bp", __name__, None, None, None, None, None, None, None, *cli_group)

    @bp.cli.command("hello")
    def hello() -> None:
        print("hello from the blueprint")

    app = tether.Tether(__name__, None, None)
    app.register_blueprint(bp)
    result = app.test_cli_runner().invoke(args=where)
    assert result.output == "hello from the blueprint\n", result.output
