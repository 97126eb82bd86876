"""Internal forwarding: nested request contexts inside one request."""

from __future__ import annotations

import io

import pytest

import tether
from tether import forward, g, request


def test_forward_to_an_endpoint_with_nested_contexts(app: tether.Tether) -> None:
    seen: list[tuple[str, str | None, object]] = []
    hooks: list[str] = []
    app.before_request(lambda: hooks.append(f"before {request.path}"))
    app.teardown_request(lambda exc: hooks.append(f"teardown {request.path}"))

    @app.route("/old/<int:id>")
    def old(id: int) -> tether.Response:
        g.outer = True
        response = forward("new", id=id * 10)
        seen.append((request.path, request.endpoint, request.view_args))
        response.headers["X-Forwarded-From"] = request.path
        return response

    @app.route("/new/<int:id>")
    def new(id: int) -> str:
        seen.append((request.path, request.endpoint, request.view_args))
        return f"new {id} outer-g={g.get('outer')} q={request.args.get('q')}"

    response = app.test_client().get("/old/4")
    assert response.text == "new 40 outer-g=True q=None"
    assert response.headers["X-Forwarded-From"] == "/old/4"
    assert seen == [("/new/40", "new", {"id": 40}), ("/old/4", "old", {"id": 4})]
    assert hooks == ["before /old/4", "before /new/40", "teardown /new/40", "teardown /old/4"]


def test_forward_carries_method_body_and_headers_unless_overridden(app: tether.Tether) -> None:
    @app.route("/entry", methods=["POST"])
    def entry() -> tether.Response:
        if request.args.get("as") == "get":
            return forward("/echo?via=path", method="GET", headers={"X-Mode": "overridden"})
        return forward("/echo")

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> dict[str, object]:
        return {
            "method": request.method,
            "json": request.get_json(silent=True),
            "form": request.form.to_dict(),
            "file": request.files["f"].read().decode() if "f" in request.files else None,
            "mode": request.headers.get("X-Mode"),
            "query": request.args.to_dict(),
        }

    client = app.test_client()
    carried = client.post("/entry", json={"a": 1}, headers={"X-Mode": "outer"}).json
    assert carried == {"method": "POST", "json": {"a": 1}, "form": {}, "file": None, "mode": "outer", "query": {}}
    form = client.post("/entry", data={"k": "v", "f": (io.BytesIO(b"upload"), "f.txt")}).json
    assert form["form"] == {"k": "v"} and form["file"] == "upload"
    overridden = client.post("/entry?as=get", json={"a": 1}, headers={"X-Mode": "outer"}).json
    assert overridden["method"] == "GET" and overridden["mode"] == "overridden" and overridden["query"] == {"via": "path"}


def test_forwarding_loop_ends_with_a_clear_error(app: tether.Tether) -> None:
    app.add_url_rule("/a", "a", lambda: forward("b"))
    app.add_url_rule("/b", "b", lambda: forward("/a"))
    with pytest.raises(RuntimeError, match="Forwarding loop: GET /[ab] was reached after 8 forwards"):
        app.test_client().get("/a")


def test_forward_from_an_async_view(app: tether.Tether) -> None:
    @app.route("/outer")
    async def outer() -> tether.Response:
        with pytest.raises(RuntimeError, match="forward_async"):
            forward("inner")
        return await tether.forward_async("inner")

    @app.route("/inner")
    async def inner() -> str:
        return f"inner at {request.path}"

    assert app.test_client().get("/outer").text == "inner at /inner"


def test_forward_outside_a_request_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="inside a request"):
        forward("anything")
