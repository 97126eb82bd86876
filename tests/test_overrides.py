"""Flask's override points: a subclass method or an instance attribute that
replaces a documented app method is called, under WSGI and ASGI, for sync and
async views; an app that replaces none keeps the fast path."""

from __future__ import annotations

import functools
import typing as t

import pytest
from werkzeug.exceptions import HTTPException, NotFound

import tether
from tether.application.pipeline import OVERRIDE_POINTS


class ApiError(Exception):
    pass


def make(protocol: str, cls: type[tether.Tether] = tether.Tether) -> tether.Tether:
    app = cls("overrides")
    app.config["SECRET_KEY"] = "k"
    if protocol == "asgi":
        app.test_client = functools.partial(app.test_client, asgi=True)  # type: ignore[method-assign]

    @app.route("/sync/<kind>")
    def sync_view(kind: str) -> str:
        return view(kind)

    @app.route("/async/<kind>")
    async def async_view(kind: str) -> str:
        return view(kind)

    return app


def view(kind: str) -> str:
    if kind == "api-error":
        raise ApiError("bad field")
    if kind == "crash":
        raise KeyError("crash")
    if kind == "missing":
        raise NotFound()
    return f"ok {tether.request.path}"


@pytest.mark.parametrize("style", ["sync", "async"])
def test_a_replaced_handle_user_exception_answers_in_json(protocol: str, style: str) -> None:
    # The extension habit the Flask docs show: an API's errors as JSON 400.
    class ApiApp(tether.Tether):
        def handle_user_exception(self, e: Exception) -> t.Any:
            if isinstance(e, ApiError):
                return {"error": str(e), "view": tether.request.endpoint}, 400
            return super().handle_user_exception(e)

    client = make(protocol, ApiApp).test_client()
    response = client.get(f"/{style}/api-error")
    assert response.status_code == 400
    assert response.json == {"error": "bad field", "view": f"{style}_view"}
    assert client.get(f"/{style}/missing").status_code == 404
    assert client.get(f"/{style}/fine").text == f"ok /{style}/fine"


@pytest.mark.parametrize("style", ["sync", "async"])
def test_an_instance_attribute_replacing_handle_exception_is_called(protocol: str, style: str) -> None:
    app = make(protocol)
    seen: list[str] = []

    def handle_exception(e: Exception) -> tuple[dict[str, str], int]:
        seen.append(type(e).__name__)
        return {"error": "internal"}, 500

    app.handle_exception = handle_exception  # type: ignore[method-assign]
    response = app.test_client().get(f"/{style}/crash")
    assert (response.status_code, response.json) == (500, {"error": "internal"})
    assert seen == ["KeyError"]


@pytest.mark.parametrize("style", ["sync", "async"])
def test_replaced_response_steps_are_called(protocol: str, style: str) -> None:
    calls: list[str] = []

    class Traced(tether.Tether):
        def make_response(self, rv: t.Any) -> tether.Response:
            calls.append("make_response")
            response = super().make_response(rv)
            response.headers["X-Made"] = "1"
            return response

        def process_response(self, response: tether.Response) -> tether.Response:
            calls.append("process_response")
            response = super().process_response(response)
            response.headers["X-Processed"] = "1"
            return response

        def dispatch_request(self) -> t.Any:
            calls.append("dispatch_request")
            return super().dispatch_request()

        def full_dispatch_request(self) -> tether.Response:
            calls.append("full_dispatch_request")
            return super().full_dispatch_request()

        def preprocess_request(self) -> t.Any:
            calls.append("preprocess_request")
            return super().preprocess_request()

    app = make(protocol, Traced)

    @app.after_request
    def after(response: tether.Response) -> tether.Response:
        calls.append("after_request")
        return response

    response = app.test_client().get(f"/{style}/fine")
    assert response.text == f"ok /{style}/fine"
    assert (response.headers["X-Made"], response.headers["X-Processed"]) == ("1", "1")
    assert calls == [
        "full_dispatch_request", "preprocess_request", "dispatch_request",
        "make_response", "process_response", "after_request",
    ]


def test_replaced_http_exception_handling_url_adapter_and_logging(protocol: str) -> None:
    logged: list[str] = []

    class Custom(tether.Tether):
        def handle_http_exception(self, e: HTTPException) -> t.Any:
            return {"http_error": e.code}, e.code

        def create_url_adapter(self, request: t.Any) -> t.Any:
            adapter = super().create_url_adapter(request)
            if request is not None and request.path == "/sync/alias":
                adapter.path_info = "/sync/aliased"  # type: ignore[union-attr]
            return adapter

        def log_exception(self, exc_info: t.Any) -> None:
            logged.append(str(exc_info[1]))

    app = make(protocol, Custom)
    app.config["TESTING"] = False
    client = app.test_client()
    assert client.get("/sync/missing").json == {"http_error": 404}
    assert client.get("/nowhere").json == {"http_error": 404}
    assert client.get("/sync/alias").text == "ok /sync/alias"  # matched through the replaced adapter
    assert client.get("/sync/crash").status_code == 500
    assert logged == ["'crash'"]


def test_an_app_that_replaces_nothing_keeps_the_fast_path(protocol: str) -> None:
    app = make(protocol)
    assert app.test_client().get("/async/fine").text == "ok /async/fine"
    assert app._plan is not None and app._plan.replaced == frozenset()
    assert set(OVERRIDE_POINTS) <= {name for name in dir(tether.Tether) if not name.startswith("_")}


def test_replacing_a_method_that_is_not_a_step_keeps_async_views_on_the_loop(protocol: str) -> None:
    class Stamped(tether.Tether):
        def make_response(self, rv: t.Any) -> tether.Response:
            response = super().make_response(rv)
            response.headers["X-Stamped"] = "1"
            return response

    app = make(protocol, Stamped)
    response = app.test_client().get("/async/fine")
    assert (response.text, response.headers["X-Stamped"]) == ("ok /async/fine", "1")
    assert app._plan is not None and app._plan.replaced == frozenset() and not app._custom_url_adapter
    assert app.async_view(app.test_request_context("/async/fine").request) is not None


def test_a_replaced_make_default_options_response_with_flasks_signature_answers_options(protocol: str) -> None:
    class Options(tether.Tether):
        def make_default_options_response(self) -> tether.Response:
            response = super().make_default_options_response()
            response.headers["X-Options"] = tether.request.path
            return response

    app = make(protocol, Options)
    for path in ("/sync/fine", "/async/fine"):
        response = app.test_client().options(path)
        assert (response.status_code, response.headers["X-Options"]) == (200, path)
        assert set(response.allow) == {"GET", "HEAD", "OPTIONS"}
