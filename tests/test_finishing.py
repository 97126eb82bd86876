"""One finishing step for every response: a default header set in one place
(an ``after_request`` function, or a replaced ``process_response``) is on
whole and streamed responses (WSGI and ASGI), on the responses that reject a
WebSocket, and on debug mode's traceback page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tether
from asgi_harness import exchange, http_scope
from tether.serving.debug import DebugTracebacks
from tether.testing import WebSocketRejected


class Stamping(tether.Tether):
    def process_response(self, response: tether.Response) -> tether.Response:
        response = super().process_response(response)
        response.headers["X-Default"] = "on"
        return response


def build(place: str) -> tether.Tether:
    app = (Stamping if place == "process_response" else tether.Tether)("finishing")
    app.logger.disabled = True  # /boom and /crash log their errors on purpose
    if place == "after_request":

        @app.after_request
        def stamp(response: tether.Response) -> tether.Response:
            response.headers["X-Default"] = "on"
            return response

    @app.route("/")
    def index() -> str:
        return "whole"

    @app.route("/stream")
    def stream() -> Iterator[str]:
        return iter(["a", "b"])

    @app.route("/boom")
    def boom() -> str:
        raise LookupError("the boom view failed")

    @app.websocket("/private")
    async def private() -> tuple[str, int]:
        return "token required", 401

    @app.websocket("/crash")
    async def crash() -> None:
        raise RuntimeError("before accept")

    return app


PLACES = ["after_request", "process_response"]


@pytest.mark.parametrize("place", PLACES)
def test_whole_and_streamed_responses_pass_the_finishing_step(place: str, protocol: str) -> None:
    client = build(place).test_client(asgi=protocol == "asgi")
    whole = client.get("/")
    streamed = client.get("/stream")
    assert (whole.text, whole.headers.get("X-Default")) == ("whole", "on")
    assert (streamed.text, streamed.headers.get("X-Default")) == ("ab", "on")


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("path", ["/private", "/crash", "/nowhere", "/private?origin"])
def test_a_websocket_rejection_passes_the_finishing_step(place: str, path: str) -> None:
    # WebSockets are served under ASGI only.
    app = build(place)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    headers = {"Origin": "https://elsewhere.test"} if path.endswith("?origin") else {}
    with pytest.raises(WebSocketRejected) as rejected:
        with app.test_client(asgi=True).websocket(path, headers=headers):
            pass
    assert rejected.value.status in (401, 403, 404, 500)
    assert rejected.value.headers.get("X-Default") == "on"


@pytest.mark.parametrize("place", PLACES)
def test_the_debug_page_passes_the_finishing_step(place: str) -> None:
    app = build(place)
    app.debug = True
    sent = exchange(DebugTracebacks(app), http_scope("/boom"), [b""])
    start = sent[0]
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert start["status"] == 500 and "LookupError: the boom view failed" in body and "Traceback" in body
    assert headers.get("x-default") == "on"
