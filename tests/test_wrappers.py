"""Response and request objects."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Response as WerkzeugResponse

import tether
from tether import Response, g, render_template, render_template_string


@pytest.mark.parametrize(
    "args",
    [
        ("text",),
        (b"bytes",),
        ("", 204),
        ("x", 404),
        ("x", 200, None, "text/plain"),
        ("{}", None, None, "application/json"),
        ("é", 201),
        ("x", 299),
    ],
)
def test_fast_constructor_matches_werkzeug(args: tuple[object, ...]) -> None:
    ours = Response(*args)
    theirs = WerkzeugResponse(*args) if len(args) == 4 else WerkzeugResponse(*args, mimetype="text/html")
    assert ours.status == theirs.status and ours.status_code == theirs.status_code
    assert list(ours.headers) == list(theirs.headers)
    assert ours.get_data() == theirs.get_data() and ours.response == theirs.response
    assert ours.is_sequence and not ours.direct_passthrough
    ours.headers["X-Added"] = "1"
    ours.set_data("changed")
    assert ours.headers["Content-Length"] == "7" and ours.get_data() == b"changed"
    closed: list[int] = []
    ours.call_on_close(lambda: closed.append(1))
    ours.close()
    assert closed == [1]


def test_response_defaults_and_unusual_status() -> None:
    assert Response().mimetype == "text/html" and Response().status_code == 200
    assert Response("x", 799).status == "799 UNKNOWN"
    assert Response("x", "201 Made").status == "201 Made"


def test_templates(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.context_processor
    def extra() -> dict[str, str]:
        return {"extra": "ctx-processor"}

    @app.template_filter("shout")
    def shout(s: str) -> str:
        return s.upper()

    @app.route("/")
    def index() -> str:
        g.who = "g-value"
        return render_template("hello.html", greeting="<hi>")

    @app.route("/string")
    def string() -> str:
        return render_template_string("{{ 'a' | shout }} {{ value }}", value="<b>")

    @app.route("/stream")
    def stream() -> object:
        return tether.stream_template_string("{% for i in range(3) %}{{ i }}{{ request.path }}{% endfor %}")

    assert client.get("/?name=ada").text.strip() == "<p>&lt;hi&gt; ada g-value / test key ctx-processor</p>"
    assert client.get("/string").text == "A &lt;b&gt;"
    assert client.get("/stream").text == "0/stream1/stream2/stream"
