"""The trading desk example (seed 003): per-user live updates from periodic services."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from werkzeug.test import Client

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

from examples.trading.app import create_app  # noqa: E402
from examples.trading.data import get_db  # noqa: E402
from examples.trading.models import User  # noqa: E402


@pytest.fixture
def desk(tmp_path: Path) -> object:
    """The app, seeded; its periodic services run only when a test runs them."""
    middleware = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/desk.db", "TESTING": True, "MARKET_SEED": 3})
    assert middleware.app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    return middleware


def user_ids(app: object) -> dict[str, int]:
    with app.app_context():  # type: ignore[attr-defined]
        return {user.name: user.id for user in get_db().query(User)}


def test_a_user_receives_only_their_own_updates_over_a_websocket(desk: object) -> None:
    app = desk.app  # type: ignore[attr-defined]
    client = app.test_client(asgi=True)
    ids = user_ids(app)
    client.post("/", data={"name": "alice", "password": "alice"})
    with client.websocket("/live") as ws:
        hello = ws.receive_json()
        assert hello["kind"] == "hello" and hello["worker"] == os.getpid()
        initial = [ws.receive_json() for _ in range(4)]
        assert {m["kind"] for m in initial} == {"balance", "positions", "pnl", "orders"}
        assert {m["user"] for m in initial} == {ids["alice"]}
        symbols = {p["symbol"] for m in initial if m["kind"] == "positions" for p in m["data"]}
        assert symbols == {"AAPL", "MSFT"}
        app.periodic_services["market"].run_once()
        app.periodic_services["refresh positions"].run_once()
        update = ws.receive_json()
        assert update["user"] == ids["alice"] and update["kind"] == "positions"
        assert {p["symbol"] for p in update["data"]} == {"AAPL", "MSFT"}


def test_updates_are_published_only_when_data_changed(desk: object) -> None:
    app = desk.app  # type: ignore[attr-defined]
    bob = user_ids(app)["bob"]
    with app.broadcast.subscribe(f"user:{bob}") as updates:
        refresh = app.periodic_services["refresh balance"]
        refresh.run_once()
        refresh.run_once()
        assert len(updates.queued()) == 1 and updates.queued()[0]["kind"] == "balance"
        app.periodic_services["market"].run_once()
        app.periodic_services["refresh pnl"].run_once()
        assert [m["kind"] for m in updates.queued()[1:]] == ["pnl"]


def test_sse_fallback_resumes_from_last_event_id_and_needs_a_login(desk: object) -> None:
    app = desk.app  # type: ignore[attr-defined]
    client = app.test_client()
    assert client.get("/live/events").status_code == 401
    assert client.get("/live/state").status_code == 401
    assert client.post("/", data={"name": "bob", "password": "wrong"}).status_code == 200
    client.post("/", data={"name": "bob", "password": "bob"})
    bob = user_ids(app)["bob"]
    state = client.get("/live/state").json
    assert {m["kind"] for m in state["messages"]} == {"balance", "positions", "pnl", "orders"}
    assert {m["user"] for m in state["messages"]} == {bob}
    app.periodic_services["refresh balance"].run_once()
    response = client.get("/live/events", headers={"Last-Event-ID": "1-0"}, buffered=False)
    events = response.iter_events()
    assert next(events)["event"] == "gap"  # an id from before this process: reload the state
    replayed = [next(events)]
    while json.loads(replayed[-1]["data"])["kind"] != "balance":  # the history, up to the refresh above
        replayed.append(next(events))
    response.close()
    first = replayed[-1]
    assert {json.loads(e["data"])["user"] for e in replayed} == {bob}
    assert [e["id"] for e in replayed] == sorted((e["id"] for e in replayed), key=id_order)
    app.periodic_services["market"].run_once()
    app.periodic_services["refresh pnl"].run_once()
    response = client.get("/live/events", headers={"Last-Event-ID": first["id"]}, buffered=False)
    missed = next(response.iter_events())
    response.close()
    # What came after the last id seen (the refreshers also run on their own meanwhile).
    assert json.loads(missed["data"])["user"] == bob and id_order(missed["id"]) > id_order(first["id"])


def id_order(message_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in message_id.split("-"))


def test_backend_is_mounted_and_scripts_have_an_app_context(desk: object) -> None:
    http = Client(desk)
    assert http.get("/").status_code == 200
    users = http.get("/backend/users").json
    assert users["app"] == "backend" and [u["name"] for u in users["users"]] == ["alice", "bob"]
    with desk.app.app_context():  # type: ignore[attr-defined]
        assert get_db().query(User).count() == 2
