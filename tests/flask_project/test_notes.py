"""The notes app's own tests, written against Flask."""

import os
import tempfile

import pytest
from flask import g, session
from notes import create_app, init_db


@pytest.fixture
def app():
    fd, path = tempfile.mkstemp()
    app = create_app({"TESTING": True, "DATABASE": path})
    with app.app_context():
        init_db()
    yield app
    os.close(fd)
    os.unlink(path)


@pytest.fixture
def client(app):
    return app.test_client()


def login(client, name="ada"):
    return client.post("/login", data={"username": name}, follow_redirects=True)


def test_login_flashes_and_sets_session(client):
    response = login(client)
    assert b"<p>Welcome, ada</p>" in response.data
    assert b"Hello ada" in response.data
    with client:
        client.get("/")
        assert session["user"] == "ada"
        assert g.user == "ada"


def test_logout(client):
    login(client)
    client.get("/logout")
    assert b"Hello stranger" in client.get("/").data


def test_notes_crud(client):
    assert client.post("/api/notes", json={"body": "x"}).status_code == 401
    login(client)
    created = client.post("/api/notes", json={"body": "first"})
    assert created.status_code == 201
    assert created.get_json() == {"id": 1, "url": "/api/notes/1"}
    assert client.post("/api/notes", json={}).get_json() == {"error": "body is required"}
    assert client.get("/api/notes/1").get_json() == {"id": 1, "owner": "ada", "body": "first"}
    assert client.get("/count").get_json() == {"ada": 1}
    assert client.delete("/api/notes/1").status_code == 204
    missing = client.get("/api/notes/1")
    assert missing.status_code == 404 and missing.get_json() == {"error": "not found", "path": "/api/notes/1"}


def test_streamed_export_sees_g_and_db(client):
    login(client, "grace")
    client.post("/api/notes", json={"body": "one"})
    client.post("/api/notes", json={"body": "two"})
    response = client.get("/export")
    assert response.mimetype == "text/plain"
    assert response.data == b"user=grace\none\ntwo\n"


def test_session_transaction(client):
    with client.session_transaction() as sess:
        sess["user"] = "linus"
    assert b"Hello linus" in client.get("/").data


def test_db_closed_after_context(app):
    with app.app_context():
        from notes import get_db

        db = get_db()
        assert db is get_db()
    with pytest.raises(Exception, match="closed"):
        db.execute("SELECT 1")


def test_init_db_command(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init-db"])
    assert "Initialized" in result.output


def test_test_request_context(app):
    from flask import request, url_for

    with app.test_request_context("/api/notes/3?x=1"):
        assert request.endpoint == "api.note"
        assert request.args["x"] == "1"
        assert url_for("api.note", note_id=4) == "/api/notes/4"
