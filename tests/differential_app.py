"""One app, written once against Flask's API, built twice: on real Flask and on
tether. Its views report what they saw of the request, and return each form a
Flask view may return; ``tests/test_differential.py`` sends both the same
requests and compares what comes back."""

from __future__ import annotations

import io
import types
import typing as t
from pathlib import Path

import flask
from flask.json.provider import DefaultJSONProvider as FlaskJSONProvider

import tether
from tether.application.json.provider import DefaultJSONProvider as TetherJSONProvider

#: The flask names the app uses, from Flask and from tether.
FLASK = types.SimpleNamespace(framework=flask, Flask=flask.Flask, JSONProvider=FlaskJSONProvider)
TETHER = types.SimpleNamespace(framework=tether, Flask=tether.Tether, JSONProvider=TetherJSONProvider)

#: The environ keys apps read (with every ``HTTP_*`` key), reported by ``/see``.
ENVIRON_KEYS = (
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
    "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "wsgi.url_scheme",
)
#: A file for ``send_file`` by path (conditional requests, ranges, ETag).
STATIC_FILE = Path(__file__).parent / "templates" / "hello.html"
#: The routes a generated request aims at (anything else is a 404).
ROUTES = (
    "/see", "/see/", "/see/x/y", "/json", "/str", "/dict", "/list", "/tuple-status", "/tuple-headers",
    "/tuple-all", "/response", "/redirect", "/redirect-external", "/abort/400", "/abort/403", "/abort/418",
    "/jsonify", "/jsonify-args", "/stream", "/file", "/file-path", "/handled", "/boom", "/cookie",
    "/session", "/user/7", "/user/x", "/slash", "/slash/", "/missing", "/async-see",
)


class Handled(Exception):
    """An error the app's handler turns into a response."""


def build(api: types.SimpleNamespace, *, dumps_override: bool = False) -> t.Any:
    """The app on ``api`` (:data:`FLASK` or :data:`TETHER`)."""
    fw = api.framework
    request = fw.request
    app = api.Flask("differential", root_path=str(Path(__file__).parent))
    app.config.update(SECRET_KEY="differential", MAX_CONTENT_LENGTH=50_000)
    app.logger.disabled = True  # /boom logs its error on purpose
    if dumps_override:
        class Marked(api.JSONProvider):  # type: ignore[name-defined,misc]
            """A provider whose every document says where it came from."""

            def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
                if isinstance(obj, dict):
                    obj = {**obj, "via": "override"}
                return super().dumps(obj, **kwargs)

        app.json = Marked(app)

    def seen() -> dict[str, t.Any]:
        try:
            strict: t.Any = ["ok", request.get_json()]
        except Exception as e:  # noqa: BLE001 - which error is what is compared
            strict = ["error", getattr(e, "code", None), type(e).__name__]
        files = {
            name: [[f.filename, f.content_type, f.read().decode("latin-1")] for f in values]
            for name, values in request.files.lists()
        }
        return {
            "headers": [list(pair) for pair in request.headers.items()],
            "args": list(request.args.lists()),
            "form": list(request.form.lists()),
            "files": files,
            "cookies": list(request.cookies.lists()),
            "json_silent": request.get_json(silent=True),
            "json": strict,
            "data_after_form": request.get_data().decode("latin-1"),
            **{name: getattr(request, name) for name in (
                "url", "base_url", "url_root", "host_url", "host", "scheme", "remote_addr", "path", "full_path",
                "script_root", "method", "content_type", "mimetype", "content_length", "is_json", "endpoint",
            )},
            "mimetype_params": request.mimetype_params,
            "view_args": request.view_args,
            "environ": {
                key: request.environ.get(key)
                for key in (*ENVIRON_KEYS, *sorted(k for k in request.environ if k.startswith("HTTP_")))
            },
        }

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    app.add_url_rule("/see", "see", seen, methods=methods)
    app.add_url_rule("/see/", "see_slash", seen, methods=methods)
    app.add_url_rule("/see/<path:rest>", "see_rest", lambda rest: seen(), methods=methods)

    async def async_see() -> dict[str, t.Any]:
        return seen()

    app.add_url_rule("/async-see", "async_see", async_see, methods=methods)

    @app.route("/json", methods=["POST", "PUT"])
    def json_view() -> t.Any:
        return {"got": request.get_json()}

    @app.route("/str")
    def text() -> str:
        return f"text for {request.path}"

    @app.route("/dict")
    def mapping() -> dict[str, t.Any]:
        return {"b": [1, 2.5, None, True], "a": "é", "args": request.args.to_dict()}

    @app.route("/list")
    def sequence() -> list[t.Any]:
        return [1, "x", {"k": request.method}]

    @app.route("/tuple-status")
    def tuple_status() -> tuple[str, int]:
        return "made", 201

    @app.route("/tuple-headers")
    def tuple_headers() -> tuple[str, dict[str, str]]:
        return "with headers", {"X-A": "1", "Content-Type": "text/plain"}

    @app.route("/tuple-all")
    def tuple_all() -> tuple[dict[str, int], int, list[tuple[str, str]]]:
        return {"n": 1}, 202, [("X-B", "2"), ("X-B", "3"), ("Cache-Control", "no-store")]

    @app.route("/response", methods=["GET", "POST"])
    def response() -> t.Any:
        rv = fw.Response(b"raw", status=203, mimetype="text/plain", headers={"X-R": "r"})
        rv.headers.add("X-Many", "1")
        rv.headers.add("X-Many", "2")
        return rv

    @app.route("/redirect")
    def redirect() -> t.Any:
        return fw.redirect(fw.url_for("see_rest", rest="a b/é", q=request.args.get("q", "")))

    @app.route("/redirect-external")
    def redirect_external() -> t.Any:
        return fw.redirect(fw.url_for("text", _external=True), 307)

    @app.route("/abort/<int:code>")
    def aborting(code: int) -> t.Any:
        fw.abort(code)

    @app.route("/jsonify")
    def jsonify_view() -> t.Any:
        return fw.jsonify(z=1, a=[request.method], s="é<>&'")

    @app.route("/jsonify-args")
    def jsonify_args() -> t.Any:
        return fw.jsonify(1, "two", None)

    @app.route("/stream", methods=["GET", "POST"])
    def stream() -> t.Any:
        def generate() -> t.Iterator[str]:
            yield "start:"
            for key, value in request.args.items(multi=True):
                yield f"{key}={value};"
            yield "end"

        return fw.Response(fw.stream_with_context(generate()), mimetype="text/plain")

    @app.route("/file")
    def file_view() -> t.Any:
        return fw.send_file(io.BytesIO(b"0123456789" * 10), mimetype="text/plain", download_name="ten é.txt")

    @app.route("/file-path")
    def file_path() -> t.Any:
        return fw.send_file(STATIC_FILE, as_attachment=bool(request.args.get("attach")))

    @app.route("/handled")
    def handled() -> t.Any:
        raise Handled(request.args.get("why", "because"))

    @app.route("/boom")
    def boom() -> t.Any:
        return 1 // 0

    @app.route("/cookie")
    def cookie() -> t.Any:
        rv = fw.make_response("cookies set")
        rv.set_cookie("plain", "v")
        rv.set_cookie("odd", 'a b;"c"', max_age=60, path="/see", httponly=True, samesite="Lax")
        rv.delete_cookie("gone")
        return rv

    @app.route("/session")
    def session_read() -> t.Any:
        return {"seen": fw.session.get("n")}

    @app.route("/user/<int:user_id>")
    def user(user_id: int) -> t.Any:
        return {"user": user_id}

    @app.route("/slash/")
    def slash() -> str:
        return "slash"

    @app.errorhandler(Handled)
    def on_handled(e: Handled) -> t.Any:
        return {"handled": str(e), "path": request.path}, 418

    @app.errorhandler(404)
    def on_404(e: t.Any) -> t.Any:
        return fw.jsonify(error=e.code, path=request.path), 404

    @app.errorhandler(500)
    def on_500(e: t.Any) -> t.Any:
        return f"server error: {type(getattr(e, 'original_exception', e)).__name__}", 500

    return app
