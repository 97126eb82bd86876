"""Signed cookie sessions: change tracking, permanence, tampering, lazy opening, custom interfaces."""

from __future__ import annotations

import typing as t
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from uuid import UUID

import pytest

import tether
from tether import session
from tether.application.sessions import SecureCookieSession, SessionInterface


def cookie_header(response: object) -> str | None:
    return response.headers.get("Set-Cookie")  # type: ignore[attr-defined]


def test_session_round_trip_and_change_tracking(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/set")
    def set_() -> str:
        session["user"] = "ada"
        session["data"] = {"t": (1, 2), "b": b"\x00", "u": UUID(int=5), "d": datetime(2020, 1, 2, 3, 4, 5)}
        return "set"

    @app.route("/get")
    def get() -> dict[str, object]:
        data = session["data"]
        return {"user": session.get("user"), "tuple": isinstance(data["t"], tuple), "bytes": data["b"] == b"\x00",
                "uuid": data["u"] == UUID(int=5), "date": data["d"].year}

    @app.route("/read-only")
    def read_only() -> str:
        return session.get("user", "none")

    set_response = client.get("/set")
    assert "session=" in cookie_header(set_response) and "HttpOnly" in cookie_header(set_response)
    assert client.get("/get").json == {"user": "ada", "tuple": True, "bytes": True, "uuid": True, "date": 2020}
    read = client.get("/read-only")
    assert read.text == "ada" and cookie_header(read) is None
    assert "Cookie" in read.headers["Vary"]


def test_session_not_opened_when_unused(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    opened: list[int] = []
    interface = app.session_interface
    original = interface.open_session

    def counting_open(app_: tether.Tether, request: tether.Request) -> SecureCookieSession | None:
        opened.append(1)
        return original(app_, request)

    interface.open_session = counting_open  # type: ignore[method-assign]
    try:
        app.add_url_rule("/plain", "plain", lambda: "plain")
        response = client.get("/plain")
        assert response.text == "plain" and opened == [] and "Vary" not in response.headers
    finally:
        del interface.open_session


def test_permanent_session_and_cookie_settings(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    app.config.update(
        PERMANENT_SESSION_LIFETIME=timedelta(hours=1), SESSION_COOKIE_NAME="sid", SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_PATH="/app", SESSION_COOKIE_DOMAIN="example.com",
    )

    @app.route("/login")
    def login() -> str:
        session.permanent = True
        session["user"] = 1
        return "ok"

    header = cookie_header(client.get("/login"))
    assert header.startswith("sid=")
    for part in ("Secure", "SameSite=Lax", "Path=/app", "Domain=example.com", "Expires="):
        assert part in header


def test_refresh_each_request_for_permanent_sessions(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/login")
    def login() -> str:
        session.permanent = True
        session["user"] = 1
        return "ok"

    app.add_url_rule("/other", "other", lambda: "other")
    client.get("/login")
    assert cookie_header(client.get("/other")) is not None
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert cookie_header(client.get("/other")) is None


def test_clearing_the_session_deletes_the_cookie(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    app.add_url_rule("/set", "set", lambda: session.update(a=1) or "ok")
    app.add_url_rule("/clear", "clear", lambda: session.clear() or "ok")
    client.get("/set")
    header = cookie_header(client.get("/clear"))
    assert header.startswith("session=;") and "Expires=Thu, 01 Jan 1970" in header


@pytest.mark.parametrize("value", ["garbage", "eyJhIjoxfQ.bad.signature", "", "a" * 3000, "!!!.@@@"])
def test_tampered_cookie_gives_an_empty_session(app: tether.Tether, value: str) -> None:
    app.add_url_rule("/", "index", lambda: {"session": dict(session)})
    client = app.test_client()
    client.set_cookie("session", value)
    response = client.get("/")
    assert response.status_code == 200 and response.json == {"session": {}}


def test_cookie_signed_with_another_key_is_ignored(app: tether.Tether) -> None:
    app.add_url_rule("/set", "set", lambda: session.update(a=1) or "ok")
    app.add_url_rule("/get", "get", lambda: {"session": dict(session)})
    client = app.test_client()
    value = SimpleCookie(cookie_header(client.get("/set")))["session"].value
    app.config["SECRET_KEY"] = "another key"
    other = app.test_client()
    other.set_cookie("session", value)
    assert other.get("/get").json == {"session": {}}
    app.config["SECRET_KEY_FALLBACKS"] = ["test key"]
    assert other.get("/get").json == {"session": {"a": 1}}


def test_session_without_secret_key_is_a_clear_error(app: tether.Tether) -> None:
    app.config["SECRET_KEY"] = None
    app.add_url_rule("/read", "read", lambda: str(session.get("x")))
    app.add_url_rule("/write", "write", lambda: session.update(x=1) or "ok")
    client = app.test_client()
    assert client.get("/read").text == "None"
    with pytest.raises(RuntimeError, match="no secret key was set"):
        client.get("/write")


def test_nested_change_needs_modified_flag(app: tether.Tether, client: tether.testing.TetherClient) -> None:
    @app.route("/init")
    def init() -> str:
        session["items"] = []
        return "ok"

    @app.route("/append")
    def append() -> str:
        session["items"].append(len(session["items"]))
        if "mark" in tether.request.args:
            session.modified = True
        return "ok"

    app.add_url_rule("/items", "items", lambda: {"items": session["items"]})
    client.get("/init")
    client.get("/append")
    assert client.get("/items").json == {"items": []}
    client.get("/append?mark")
    assert client.get("/items").json == {"items": [0]}


def test_custom_session_interface(app: tether.Tether) -> None:
    store: dict[str, dict[str, object]] = {}

    class ServerSide(SessionInterface):
        def open_session(self, app: tether.Tether, request: tether.Request) -> SecureCookieSession:
            sid = request.cookies.get("sid", "new")
            return SecureCookieSession(store.get(sid, {}))

        def save_session(self, app: tether.Tether, session: object, response: tether.Response) -> None:
            store["s1"] = dict(session)  # type: ignore[call-overload]
            response.set_cookie("sid", "s1")

    app.session_interface = ServerSide()
    app.add_url_rule("/set", "set", lambda: session.update(v=42) or "ok")
    app.add_url_rule("/get", "get", lambda: str(session.get("v")))
    client = app.test_client()
    client.get("/set")
    assert store == {"s1": {"v": 42}}
    assert client.get("/get").text == "42"


def test_flashed_messages_can_be_read_after_the_response_in_a_kept_context(app: tether.Tether) -> None:
    """Flask-Login's tests read them this way: inside ``with client:``, after the request."""
    from tether import flash, get_flashed_messages, session

    @app.route("/login")
    def login() -> str:
        flash("Please log in.", "info")
        return "login page"

    with app.test_client() as client:
        client.get("/login")
        assert get_flashed_messages(with_categories=True) == [("info", "Please log in.")]
        with pytest.raises(RuntimeError):
            session["written"] = "after the response"  # a write still fails loudly: it would be lost



def test_a_session_class_on_sessionmixin_is_unaccessed_until_read() -> None:
    from tether.application.sessions import SessionMixin

    class Plain(dict, SessionMixin):  # type: ignore[type-arg, misc]
        pass

    class PlainInterface(SessionInterface):
        def open_session(self, app: t.Any, request: t.Any) -> Plain:
            return Plain()

        def save_session(self, app: t.Any, session: t.Any, response: t.Any) -> None:
            if session.accessed:
                response.vary.add("Cookie")

    assert Plain().accessed is False
    app = tether.Tether(__name__)
    app.session_interface = PlainInterface()
    app.add_url_rule("/unread", "unread", lambda: "unread")
    app.add_url_rule("/read", "read", lambda: str(dict(session)))
    client = app.test_client()
    assert "Vary" not in client.get("/unread").headers
    assert client.get("/read").headers["Vary"] == "Cookie"
