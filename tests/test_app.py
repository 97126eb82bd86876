"""The application layer: routing, view return values, helpers, request data, hooks, errors."""

from __future__ import annotations

import functools
import gc
import io
import logging
import typing as t
import weakref
from collections.abc import Iterator

import pytest
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter, BuildError

import tether
from tether import Response, abort, g, jsonify, make_response, redirect, request, url_for


def test_route_methods_and_shortcuts(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/any", methods=["GET", "POST"])
    def any_() -> str:
        return request.method

    for method in ("get", "post", "put", "patch", "delete"):
        getattr(app, method)(f"/{method}", endpoint=method)(lambda method=method: method)  # type: ignore[misc]

    assert client.get("/any").text == "GET" and client.post("/any").text == "POST"
    for method in ("get", "post", "put", "patch", "delete"):
        assert getattr(client, method)(f"/{method}").text == method
    with pytest.raises(TypeError, match="methods"):
        app.get("/x", methods=["POST"])


def test_automatic_head_options_and_405(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/thing", methods=["GET", "PUT"])
    def thing() -> str:
        return "body"

    head = client.head("/thing")
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == "4"
    options = client.options("/thing")
    assert options.status_code == 200
    assert set(options.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "PUT"}
    not_allowed = client.post("/thing")
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "PUT"}


def test_converters_custom_and_builtin(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    class ListConverter(BaseConverter):
        def to_python(self, value: str) -> list[str]:
            return value.split(",")

        def to_url(self, value: list[str]) -> str:
            return ",".join(value)

    app.url_map.converters["list"] = ListConverter

    @app.route("/ints/<int:a>/<float:b>")
    def numbers(a: int, b: float) -> dict[str, object]:
        return {"a": a, "b": b}

    @app.route("/list/<list:items>")
    def items(items: list[str]) -> dict[str, object]:
        return {"items": items, "url": url_for("items", items=["x", "y"])}

    @app.route("/files/<path:p>")
    def files(p: str) -> str:
        return p

    assert client.get("/ints/3/1.5").json == {"a": 3, "b": 1.5}
    assert client.get("/ints/x/1.5").status_code == 404
    assert client.get("/list/a,b").json == {"items": ["a", "b"], "url": "/list/x,y"}
    assert client.get("/files/a/b/c.txt").text == "a/b/c.txt"


def test_strict_slashes_and_endpoint_decorator(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/folder/")
    def folder() -> str:
        return "folder"

    @app.route("/loose", strict_slashes=False)
    def loose() -> str:
        return "loose"

    app.add_url_rule("/by-endpoint", endpoint="named")

    @app.endpoint("named")
    def named() -> str:
        return "named"

    redirected = client.get("/folder")
    assert redirected.status_code == 308 and redirected.headers["Location"].endswith("/folder/")
    assert client.get("/folder", follow_redirects=True).text == "folder"
    assert client.get("/loose/").text == "loose"
    assert client.get("/by-endpoint").text == "named"


def test_overwriting_an_endpoint_is_an_error(app: tether.Tether) -> None:
    app.add_url_rule("/a", "same", lambda: "a")
    with pytest.raises(AssertionError, match="overwriting an existing endpoint function: same"):
        app.add_url_rule("/b", "same", lambda: "b")


@pytest.mark.parametrize(
    ("rv", "status", "body", "content_type", "header"),
    [
        ("text", 200, b"text", "text/html; charset=utf-8", None),
        (b"bytes", 200, b"bytes", "text/html; charset=utf-8", None),
        ({"a": 1}, 200, b'{"a":1}\n', "application/json", None),
        ([1, 2], 200, b"[1,2]\n", "application/json", None),
        (("created", 201), 201, b"created", "text/html; charset=utf-8", None),
        (("teapot", "418 I'M A TEAPOT"), 418, b"teapot", "text/html; charset=utf-8", None),
        (("h", {"X-A": "1"}), 200, b"h", "text/html; charset=utf-8", ("X-A", "1")),
        (("h", [("X-A", "2")]), 200, b"h", "text/html; charset=utf-8", ("X-A", "2")),
        (("h", 202, {"X-A": "3"}), 202, b"h", "text/html; charset=utf-8", ("X-A", "3")),
        (({"a": 1}, 400), 400, b'{"a":1}\n', "application/json", None),
        (functools.partial(lambda: (iter(["a", "b"]), 200)), 200, b"ab", "text/html; charset=utf-8", None),
        ((Response("r", mimetype="text/plain"), 203), 203, b"r", "text/plain; charset=utf-8", None),
    ],
)
def test_view_return_values(
    app: tether.Tether, rv: object, status: int, body: bytes, content_type: str, header: tuple[str, str] | None
) -> None:
    app.add_url_rule("/", "index", rv if isinstance(rv, functools.partial) else lambda: rv)
    response = app.test_client().get("/")
    assert response.status_code == status
    assert response.data == body
    assert response.headers["Content-Type"] == content_type
    if header is not None:
        assert response.headers[header[0]] == header[1]


def test_generator_return_is_streamed(app: tether.Tether) -> None:
    @app.route("/")
    def index() -> Iterator[str]:
        yield "a"
        yield "b"

    assert app.test_client().get("/").data == b"ab"


@pytest.mark.parametrize("rv", [None, 42, object(), ("a", 200, {}, "extra")])
def test_invalid_return_values_name_the_view(app: tether.Tether, rv: object) -> None:
    app.add_url_rule("/", "my_view", lambda: rv)
    with pytest.raises(TypeError) as info:
        app.test_client().get("/")
    if not isinstance(rv, tuple):
        assert "'my_view'" in str(info.value)


def test_url_for(app: tether.Tether) -> None:
    @app.route("/user/<int:id>")
    def user(id: int) -> str:
        return ""

    @app.route("/only-post", methods=["POST"])
    def only_post() -> str:
        return ""

    with app.test_request_context("/"):
        assert url_for("user", id=3) == "/user/3"
        assert url_for("user", id=3, q="x") == "/user/3?q=x"
        assert url_for("user", id=3, _external=True) == "http://localhost/user/3"
        assert url_for("user", id=3, _anchor="a b") == "/user/3#a%20b"
        assert url_for("user", id=3, _scheme="https", _external=True) == "https://localhost/user/3"
        assert url_for("only_post", _method="POST") == "/only-post"
        with pytest.raises(ValueError, match="_scheme"):
            url_for("user", id=1, _scheme="https", _external=False)
        with pytest.raises(BuildError, match="Could not build url for endpoint 'nope'"):
            url_for("nope")
        with pytest.raises(BuildError, match="user"):
            url_for("user")
    with app.app_context():
        with pytest.raises(RuntimeError, match="SERVER_NAME"):
            url_for("user", id=1)
    app.config.update(SERVER_NAME="example.com", APPLICATION_ROOT="/app", PREFERRED_URL_SCHEME="https")
    with app.app_context():
        assert url_for("user", id=1) == "https://example.com/app/user/1"


def test_url_defaults_and_value_preprocessor(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.url_defaults
    def add_lang(endpoint: str, values: dict[str, object]) -> None:
        if "lang" in app.url_map._rules_by_endpoint[endpoint][0].arguments:
            values.setdefault("lang", g.get("lang", "en"))

    @app.url_value_preprocessor
    def pull_lang(endpoint: str | None, values: dict[str, object] | None) -> None:
        g.lang = values.pop("lang", None) if values else None

    @app.route("/<lang>/page")
    def page() -> str:
        return f"{g.lang} {url_for('page')}"

    assert client.get("/fr/page").text == "fr /fr/page"


def test_redirect_abort_make_response_jsonify(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/go")
    def go() -> Response:
        return redirect(url_for("target"))

    @app.route("/target")
    def target() -> Response:
        response = make_response("made", 201)
        response.headers["X-Made"] = "1"
        return response

    @app.route("/abort")
    def aborting() -> str:
        abort(403)

    @app.route("/json")
    def json_view() -> Response:
        return jsonify(a=1, b=[1, 2])

    @app.route("/json-list")
    def json_list() -> Response:
        return jsonify(1, 2)

    response = client.get("/go")
    assert response.status_code == 302 and response.headers["Location"] == "/target"
    followed = client.get("/go", follow_redirects=True)
    assert followed.status_code == 201 and followed.text == "made" and followed.headers["X-Made"] == "1"
    assert client.get("/abort").status_code == 403
    assert client.get("/json").json == {"a": 1, "b": [1, 2]}
    assert client.get("/json-list").json == [1, 2]
    with pytest.raises(RuntimeError, match="jsonify"):
        jsonify(1)


def test_request_data(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/echo", methods=["POST"])
    def echo() -> dict[str, object]:
        return {
            "json": request.get_json(silent=True),
            "form": request.form.to_dict(),
            "args": request.args.to_dict(),
            "values": request.values.to_dict(),
            "files": {k: f.read().decode() for k, f in request.files.items()},
            "data": request.get_data(as_text=True) if not request.form and not request.files else "",
            "cookie": request.cookies.get("c"),
            "header": request.headers.get("X-Test"),
            "endpoint": request.endpoint,
            "view_args": request.view_args,
        }

    client.set_cookie("c", "cookie-value")
    as_json = client.post("/echo?x=1", json={"k": "v"}, headers={"X-Test": "h"}).json
    assert as_json["json"] == {"k": "v"} and as_json["args"] == {"x": "1"} and as_json["header"] == "h"
    assert as_json["cookie"] == "cookie-value" and as_json["endpoint"] == "echo" and as_json["view_args"] == {}
    as_form = client.post("/echo?x=1", data={"f": "1", "up": (io.BytesIO(b"file body"), "a.txt")}).json
    assert as_form["form"] == {"f": "1"} and as_form["files"] == {"up": "file body"}
    assert as_form["values"] == {"x": "1", "f": "1"}
    raw = client.post("/echo", data="raw text", content_type="text/plain").json
    assert raw["data"] == "raw text" and raw["json"] is None


def test_query_string_parsing_matches_werkzeug(app: tether.Tether) -> None:
    from werkzeug.wrappers import Request as WerkzeugRequest

    for query in ["", "a=1", "a=1&a=2&b", "a=&=b&&c=3", "x=%20y&z=a+b", "k=v=w", "é=ü"]:
        with app.test_request_context("/", query_string=query):
            ours = request.args
            theirs = WerkzeugRequest(request.environ).args
            assert list(ours.items(multi=True)) == list(theirs.items(multi=True)), query


def test_malformed_json_is_400_and_large_body_is_413(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.post("/json")
    def json_view() -> dict[str, object]:
        return {"got": request.json}

    @app.post("/form")
    def form_view() -> dict[str, object]:
        return {"got": request.form.to_dict()}

    bad = client.post("/json", data="{not json", content_type="application/json")
    assert bad.status_code == 400 and b"Failed to decode JSON object" in bad.data
    wrong_type = client.post("/json", data="{}", content_type="text/plain")
    assert wrong_type.status_code == 415
    app.config["MAX_CONTENT_LENGTH"] = 10
    assert client.post("/json", json={"long": "x" * 50}).status_code == 413
    assert client.post("/form", data={"f": "x" * 50}).status_code == 413
    assert client.post("/json", json={"a": 1}).json == {"got": {"a": 1}}


def test_before_request_short_circuits_and_after_request_order(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    order: list[str] = []

    @app.before_request
    def first() -> None:
        order.append("before-1")

    @app.before_request
    def block() -> str | None:
        order.append("before-2")
        return "blocked" if request.args.get("block") else None

    @app.after_request
    def after_1(response: Response) -> Response:
        order.append("after-1")
        return response

    @app.after_request
    def after_2(response: Response) -> Response:
        order.append("after-2")
        response.headers["X-After"] = "2"
        return response

    @app.route("/")
    def index() -> str:
        order.append("view")
        return "view"

    assert client.get("/").text == "view"
    assert order == ["before-1", "before-2", "view", "after-2", "after-1"]
    order.clear()
    blocked = client.get("/?block=1")
    assert blocked.text == "blocked" and blocked.headers["X-After"] == "2"
    assert order == ["before-1", "before-2", "after-2", "after-1"]


def test_error_handlers_most_specific_class_wins(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    class AppError(Exception):
        pass

    class NotFoundish(AppError):
        pass

    @app.errorhandler(AppError)
    def app_error(e: AppError) -> tuple[str, int]:
        return "app error", 409

    @app.errorhandler(NotFoundish)
    def specific(e: NotFoundish) -> tuple[str, int]:
        return "specific", 410

    @app.errorhandler(404)
    def not_found(e: NotFound) -> tuple[str, int]:
        return f"custom 404 {request.path}", 404

    app.register_error_handler(ValueError, lambda e: ("value", 422))

    @app.route("/app-error")
    def raise_app() -> str:
        raise AppError

    @app.route("/specific")
    def raise_specific() -> str:
        raise NotFoundish

    @app.route("/value")
    def raise_value() -> str:
        raise ValueError

    with pytest.raises(ValueError, match="not a recognized HTTP error code"):
        app.register_error_handler(999, lambda e: "")
    with pytest.raises(TypeError, match="instance"):
        app.register_error_handler(ValueError(), lambda e: "")  # type: ignore[arg-type]
    assert (client.get("/app-error").status_code, client.get("/app-error").text) == (409, "app error")
    assert (client.get("/specific").status_code, client.get("/specific").text) == (410, "specific")
    assert client.get("/value").status_code == 422
    assert client.get("/missing").text == "custom 404 /missing"


def test_unhandled_exceptions(app: tether.Tether, caplog: pytest.LogCaptureFixture) -> None:
    @app.route("/boom")
    def boom() -> str:
        raise KeyError("boom")

    @app.errorhandler(500)
    def handle_500(e: Exception) -> tuple[str, int]:
        return f"handled {type(e.original_exception).__name__}", 500  # type: ignore[attr-defined]

    with pytest.raises(KeyError):
        app.test_client().get("/boom")
    app.config["TESTING"] = False
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")
    assert (response.status_code, response.text) == (500, "handled KeyError")
    assert "Exception on /boom [GET]" in caplog.text
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(KeyError):
        app.test_client().get("/boom")


def test_setup_methods_refuse_after_the_first_request(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    # As in Flask: a worker that already serves would not see the change.
    app.add_url_rule("/early", "early", lambda: "early")
    assert client.get("/early").text == "early"
    with pytest.raises(AssertionError, match="setup method 'add_url_rule'"):
        app.add_url_rule("/late", "late", lambda: "late")
    with pytest.raises(AssertionError, match="setup method 'before_request'"):
        app.before_request(lambda: None)


def test_static_files(tmp_path: object) -> None:
    import pathlib

    root = pathlib.Path(str(tmp_path))
    (root / "static").mkdir()
    (root / "static" / "hello.txt").write_text("static content")
    app = tether.Tether("static_app", root_path=str(root))
    client = app.test_client()
    response = client.get("/static/hello.txt")
    assert response.status_code == 200 and response.text == "static content"
    response.close()
    assert client.get("/static/../secret").status_code == 404
    with app.test_request_context():
        assert url_for("static", filename="hello.txt") == "/static/hello.txt"


def test_config_defaults_present(app: tether.Tether) -> None:
    for key in [
        "DEBUG", "TESTING", "SECRET_KEY", "SESSION_COOKIE_NAME", "SESSION_COOKIE_DOMAIN", "SESSION_COOKIE_PATH",
        "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_SAMESITE", "PERMANENT_SESSION_LIFETIME",
        "MAX_CONTENT_LENGTH", "SERVER_NAME", "APPLICATION_ROOT", "PREFERRED_URL_SCHEME", "TRUSTED_HOSTS",
        "PROPAGATE_EXCEPTIONS",
    ]:
        assert key in app.config


def test_trusted_hosts(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    app.add_url_rule("/", "index", lambda: "ok")
    app.config["TRUSTED_HOSTS"] = ["good.example"]
    assert client.get("/", base_url="http://good.example").status_code == 200
    assert client.get("/", base_url="http://evil.example").status_code == 400


def test_class_based_view_decorators_see_the_views_name(app: tether.Tether) -> None:
    from tether.application.views import MethodView

    seen: list[tuple[str, str]] = []

    def keyed_on_name(view: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        seen.append((view.__name__, view.__module__))  # as Flask-Limiter keys its limits
        return view

    class Items(MethodView):
        decorators = [keyed_on_name]

        def get(self) -> str:
            return "items"

    app.add_url_rule("/items", view_func=Items.as_view("items"))
    assert seen == [("items", __name__)]
    assert app.test_client().get("/items").get_data(as_text=True) == "items"


def test_the_logger_gets_the_default_handler_only_when_nothing_handles_its_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tether.application.log import default_handler, has_level_handler, wsgi_errors_stream

    app = tether.Tether("logger_alone")
    logging.getLogger("logger_alone").propagate = False  # nothing above it handles its records
    assert default_handler in app.logger.handlers
    handled = logging.getLogger("logger_handled")
    handled.addHandler(logging.NullHandler())
    assert has_level_handler(handled) and default_handler not in tether.Tether("logger_handled").logger.handlers
    errors = io.StringIO()
    with app.test_request_context(environ_overrides={"wsgi.errors": errors}):
        app.logger.error("during the request")
        assert wsgi_errors_stream._get_current_object() is errors  # type: ignore[attr-defined]
    assert "during the request" in errors.getvalue()


def test_debug_flag_dotenv_flag_and_template_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    from jinja2 import DictLoader

    from tether.application.helpers import get_debug_flag, get_load_dotenv, get_template_attribute

    monkeypatch.delenv("TETHER_DEBUG", raising=False)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert get_debug_flag()
    monkeypatch.setenv("TETHER_DEBUG", "0")
    assert not get_debug_flag()
    monkeypatch.setenv("FLASK_SKIP_DOTENV", "1")
    assert not get_load_dotenv()
    monkeypatch.delenv("FLASK_SKIP_DOTENV")
    assert get_load_dotenv()
    app = tether.Tether("macros")
    app.jinja_env.loader = DictLoader({"macros.html": "{% macro hi(name) %}hi {{ name }}{% endmacro %}"})
    with app.app_context():
        assert get_template_attribute("macros.html", "hi")("ada") == "hi ada"


def test_an_app_nobody_refers_to_is_freed_at_once() -> None:
    # Its serving state, background side, JSON provider, entry point and static
    # view refer back to it weakly, so reference counting alone frees it (as in
    # Flask); and its exit hook, run later, finds nothing to stop.
    gc.disable()
    try:
        app = tether.Tether("freed")

        @app.route("/")
        def index() -> str:
            return "hi"

        client = app.test_client()
        assert client.get("/").text == "hi"
        assert app.json.response({"a": 1}).json == {"a": 1}
        ref = weakref.ref(app)
        serving = app.serving
        del app, client, index
        assert ref() is None
        serving._stop_at_exit()
    finally:
        gc.enable()
