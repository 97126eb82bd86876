"""How a test suite gets its contexts: the test client, and contexts pushed by hand."""

import pytest

from tether import Tether, current_app, g, request, session


@pytest.fixture
def app() -> Tether:
    app = Tether(__name__)
    app.config.update(TESTING=True, SECRET_KEY="test")

    @app.get("/whoami")
    def whoami() -> dict[str, str]:
        g.user = session.get("user", "nobody")
        return {"user": g.user}

    return app


def test_a_request_through_the_client(app: Tether) -> None:
    client = app.test_client()
    with client.session_transaction() as s:
        s["user"] = "ann"
    assert client.get("/whoami").json == {"user": "ann"}


def test_the_same_through_the_asgi_adapter(app: Tether) -> None:
    assert app.test_client(asgi=True).get("/whoami").json == {"user": "nobody"}


def test_contexts_kept_after_the_request(app: Tether) -> None:
    with app.test_client() as client:
        client.get("/whoami?x=1")
        assert request.args["x"] == "1" and g.user == "nobody"


def test_code_that_needs_a_request(app: Tether) -> None:
    with app.test_request_context("/?q=tether", headers={"X-Team": "blue"}):
        assert request.args["q"] == "tether" and request.headers["X-Team"] == "blue"


def test_code_that_needs_the_app(app: Tether) -> None:
    with app.app_context():
        assert current_app.config["TESTING"] is True
