"""The trading desk example (seed 003): per-user live updates from periodic services, the order API, the backend."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import typing as t
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.test import Client

from tether.live.broadcast import BroadcastUnavailable, decode_last_ids, encode_last_ids
from tether.testing import TetherClient

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

from examples.trading.app import KINDS, create_app  # noqa: E402
from examples.trading.data import QUOTES, SEEDED_HISTORY, get_db  # noqa: E402
from examples.trading.models import Balance, Order, Position, PricePoint, Quote, User  # noqa: E402
from examples.trading.orders import OrderRequest, place  # noqa: E402


@pytest.fixture
def desk(tmp_path: Path) -> object:
    """The app, seeded. Its periodic services run once when it starts serving (its
    first request), then only when a test runs them."""
    middleware = create_app({
        "DATABASE_URL": f"sqlite:///{tmp_path}/desk.db", "TESTING": True, "MARKET_SEED": 3,
        "MARKET_INTERVAL": 3600, "REFRESH_INTERVALS": dict.fromkeys(KINDS, 3600),
    })
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
    state = client.get("/live/state").json
    assert state["worker"] == os.getpid() and state["channel"] == f"user:{ids['alice']}"
    initial = state["messages"]
    assert {m["kind"] for m in initial} == {"balance", "positions", "pnl", "orders", "prices"}
    assert {m["user"] for m in initial} == {ids["alice"]}
    symbols = {p["symbol"] for m in initial if m["kind"] == "positions" for p in m["data"]}
    assert symbols == {"AAPL", "MSFT"}
    prices = next(m["data"] for m in initial if m["kind"] == "prices")
    assert set(prices) == set(QUOTES) and all(len(points) >= SEEDED_HISTORY for points in prices.values())
    with client.websocket("/live/ws") as ws:
        ws.send_json({"join": f"user:{ids['bob']}"})  # the channel rule: one's own channel only
        assert ws.receive_json() == {"event": "refused", "channel": f"user:{ids['bob']}"}
        ws.send_json({"join": state["channel"], "last_id": state["last_id"]})
        assert ws.receive_json() == {"event": "joined", "channel": state["channel"], "position": state["last_id"]}
        app.periodic_services["market"].run_once()
        app.periodic_services["refresh positions"].run_once()
        updates = [ws.receive_json()]
        while updates[-1]["data"]["kind"] != "positions" or all(m["data"]["kind"] != "prices" for m in updates):
            updates.append(ws.receive_json())
        assert {m["channel"] for m in updates} == {state["channel"]}
        assert {m["data"]["user"] for m in updates} == {ids["alice"]}
        assert {p["symbol"] for p in updates[-1]["data"]["data"]} == {"AAPL", "MSFT"}
        moved = [m["data"]["data"] for m in updates if m["data"]["kind"] == "prices"][-1]
        assert set(moved) == set(QUOTES) and all(len(points) == 1 for points in moved.values())


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
        # The market sends its prices to everyone; of the refreshed data, only the pnl changed.
        assert [m["kind"] for m in updates.queued()[1:] if m["kind"] != "prices"] == ["pnl"]


def test_sse_fallback_resumes_from_last_event_id_and_needs_a_login(desk: object) -> None:
    app = desk.app  # type: ignore[attr-defined]
    client = app.test_client()
    bob = user_ids(app)["bob"]
    channel = f"user:{bob}"
    anonymous = client.get("/live/events", query_string={"channels": channel}, buffered=False)
    assert json.loads(next(anonymous.iter_events())["data"]) == {"event": "refused", "channel": channel}
    anonymous.close()
    assert client.get("/live/state").status_code == 401
    assert client.post("/", data={"name": "bob", "password": "wrong"}).status_code == 200
    client.post("/", data={"name": "bob", "password": "bob"})
    state = client.get("/live/state").json
    assert state["channel"] == channel
    assert {m["kind"] for m in state["messages"]} == {"balance", "positions", "pnl", "orders", "prices"}
    assert {m["user"] for m in state["messages"]} == {bob}
    app.periodic_services["refresh balance"].run_once()
    events = sse(client, channel, encode_last_ids({channel: "1-0"}))
    assert next(events)["event"] == "joined"
    assert next(events)["event"] == "gap"  # an id from before this process: reload the state
    replayed = [next(events)]
    while json.loads(replayed[-1]["data"])["data"]["kind"] != "balance":  # the history, up to the refresh above
        replayed.append(next(events))
    events.close()
    first = replayed[-1]
    assert {json.loads(e["data"])["data"]["user"] for e in replayed} == {bob}
    assert [e["id"] for e in replayed] == sorted((e["id"] for e in replayed), key=id_order)
    app.periodic_services["market"].run_once()
    app.periodic_services["refresh pnl"].run_once()
    events = sse(client, channel, first["id"])
    assert next(events)["event"] == "joined"
    missed = next(events)
    events.close()
    # What came after the last id seen (the refreshers also run on their own meanwhile).
    assert json.loads(missed["data"])["data"]["user"] == bob and id_order(missed["id"]) > id_order(first["id"])


def sse(client: TetherClient, channel: str, last_event_id: str) -> t.Generator[dict[str, str], None, None]:
    """The events of the live endpoint's SSE fallback, resumed from ``last_event_id``."""
    response = client.get("/live/events", query_string={"channels": channel}, headers={"Last-Event-ID": last_event_id}, buffered=False)
    try:
        yield from response.iter_events()
    finally:
        response.close()


def id_order(last_event_id: str) -> tuple[int, ...]:
    """The order of a one-channel SSE id (``channel=id``)."""
    (message_id,) = decode_last_ids(last_event_id).values()
    return tuple(int(part) for part in message_id.split("-"))


def test_backend_needs_a_login_and_shows_only_the_users_own_data(desk: object) -> None:
    http = Client(desk)
    assert http.get("/").status_code == 200
    anonymous = http.get("/backend/users")
    assert anonymous.status_code == 401 and anonymous.json == {"error": "Log in first."}
    http.post("/", data={"name": "alice", "password": "alice"})  # the frontend's session cookie
    users = http.get("/backend/users").json
    assert users == {"app": "backend", "users": [{"name": "alice", "cash": 10_000.0}]}
    forged = Client(desk)
    forged.set_cookie("session", http.get_cookie("session").value[:-2] + "xx")  # type: ignore[union-attr]
    assert forged.get("/backend/users").status_code == 401
    with desk.app.app_context():  # type: ignore[attr-defined]
        assert get_db().query(User).count() == 2


def test_the_login_pages_stylesheet_is_whole(desk: object) -> None:
    """A ``#`` in a ``data:`` stylesheet URL ends it (a fragment): the error text lost its colour."""
    page = Client(desk).post("/", data={"name": "alice", "password": "wrong"}).text
    assert '<p class="error">Unknown name or wrong password.</p>' in page
    assert "data:text/css" not in page
    assert re.search(r"<style>[^<]*\.error \{ color: #b00; \}[^<]*</style>", page)


# The order API: POST /api/orders and /api/orders/<id>/cancel.


@pytest.fixture
def alice(desk: object) -> TetherClient:
    """Alice's client, once the startup run of the market has committed: from
    then on, prices move only when a test moves them."""
    app = desk.app  # type: ignore[attr-defined]
    client = app.test_client()
    assert client.post("/", data={"name": "alice", "password": "alice"}).status_code == 302
    deadline = time.monotonic() + 20
    while history_length(app) == SEEDED_HISTORY:
        assert time.monotonic() < deadline, "the market never ran at startup"
        time.sleep(0.02)
    return client


def history_length(app: t.Any) -> int:
    with app.app_context():
        return get_db().scalar(select(func.count()).select_from(PricePoint).where(PricePoint.symbol == "AAPL"))


def state(app: t.Any, user: str) -> dict[str, t.Any]:
    """The user's cash, positions and orders, and the quotes, from the database."""
    with app.app_context():
        db = get_db()
        user_id = db.scalar(select(User.id).where(User.name == user))
        return {
            "cash": db.get(Balance, user_id).cash,
            "positions": {p.symbol: (p.quantity, p.cost) for p in db.scalars(select(Position).where(Position.user_id == user_id))},
            "orders": {o.id: o.status for o in db.scalars(select(Order).where(Order.user_id == user_id))},
            "quotes": {q.symbol: q.price for q in db.scalars(select(Quote))},
        }


def set_price(app: t.Any, symbol: str, price: float) -> None:
    with app.app_context():
        db = get_db()
        db.get(Quote, symbol).price = price
        db.commit()


def login(app: t.Any, name: str) -> TetherClient:
    client = app.test_client()
    assert client.post("/", data={"name": name, "password": name}).status_code == 302
    return client


def mentions(messages: list[dict[str, t.Any]], text: str) -> bool:
    return any(text in json.dumps(m) for m in messages)


def test_a_market_order_fills_at_once_and_reaches_only_its_users_channel(desk: t.Any, alice: TetherClient) -> None:
    app = desk.app
    ids = user_ids(app)
    before, bob_before = state(app, "alice"), state(app, "bob")
    with app.broadcast.subscribe(f"user:{ids['alice']}") as mine, app.broadcast.subscribe(f"user:{ids['bob']}") as theirs:
        response = alice.post("/api/orders", json={"symbol": "AMZN", "side": "buy", "quantity": 3})
        assert response.status_code == 201
        order = response.json["order"]
        assert order["status"] == "filled" and order["fill_price"] == before["quotes"]["AMZN"]
        assert order["type"] == "market" and order["placed_at"].endswith("Z") and order["closed_at"].endswith("Z")
        after = state(app, "alice")
        assert after["cash"] == pytest.approx(before["cash"] - 3 * order["fill_price"])
        assert after["positions"]["AMZN"] == (3, order["fill_price"])
        sent = {m["kind"]: m for m in mine.queued() if m["kind"] in KINDS}
        assert set(sent) == set(KINDS) and {m["user"] for m in sent.values()} == {ids["alice"]}
        assert sent["orders"]["data"][0] == order
        assert sent["balance"]["data"] == round(after["cash"], 2)
        amzn = next(p for p in sent["positions"]["data"] if p["symbol"] == "AMZN")
        assert amzn == {
            "symbol": "AMZN", "quantity": 3, "avg_cost": order["fill_price"], "price": order["fill_price"],
            "market_value": round(3 * order["fill_price"], 2), "unrealized": 0.0,
        }
        assert not mentions(theirs.queued(), "AMZN") and not mentions(theirs.queued(), order["placed_at"])
    assert state(app, "bob") == bob_before


def test_a_limit_order_rests_until_a_market_move_crosses_it(desk: t.Any, alice: TetherClient) -> None:
    app = desk.app
    quotes = state(app, "alice")["quotes"]
    buy_limit = round(quotes["GOOG"] * 0.8, 2)
    buy = alice.post("/api/orders", json={"symbol": "GOOG", "side": "buy", "type": "limit", "quantity": 4, "limit_price": buy_limit})
    sell_limit = round(quotes["AAPL"] * 1.2, 2)
    sell = alice.post("/api/orders", json={"symbol": "AAPL", "side": "sell", "type": "limit", "quantity": 4, "limit_price": sell_limit})
    assert buy.status_code == sell.status_code == 201
    assert buy.json["order"]["status"] == sell.json["order"]["status"] == "open"
    assert buy.json["order"]["closed_at"] is None and buy.json["order"]["limit_price"] == buy_limit
    before = state(app, "alice")
    app.periodic_services["market"].run_once()  # a 1% move crosses neither
    assert state(app, "alice")["orders"][buy.json["order"]["id"]] == "open"
    set_price(app, "GOOG", buy_limit * 0.9)
    set_price(app, "AAPL", sell_limit * 1.1)
    with app.broadcast.subscribe(f"user:{user_ids(app)['alice']}") as mine:
        app.periodic_services["market"].run_once()
        after = state(app, "alice")
        orders = next(m["data"] for m in mine.queued() if m["kind"] == "orders")
    filled = {o["id"]: o for o in orders}
    bought, sold = filled[buy.json["order"]["id"]], filled[sell.json["order"]["id"]]
    assert bought["status"] == sold["status"] == "filled"
    assert bought["fill_price"] <= buy_limit and sold["fill_price"] >= sell_limit
    assert after["cash"] == pytest.approx(before["cash"] - 4 * bought["fill_price"] + 4 * sold["fill_price"])
    assert after["positions"]["GOOG"] == (4, bought["fill_price"]) and after["positions"]["AAPL"] == (6, 150.0)


def test_a_limit_order_already_crossed_fills_at_the_current_price(desk: t.Any, alice: TetherClient) -> None:
    price = state(desk.app, "alice")["quotes"]["MSFT"]
    response = alice.post("/api/orders", json={"symbol": "MSFT", "side": "sell", "type": "limit", "quantity": 5, "limit_price": 1})
    assert response.json["order"]["status"] == "filled" and response.json["order"]["fill_price"] == price
    assert "MSFT" not in state(desk.app, "alice")["positions"]  # sold it all


def test_only_the_owner_cancels_an_open_order(desk: t.Any, alice: TetherClient) -> None:
    app = desk.app
    limit = round(state(app, "alice")["quotes"]["NVDA"] * 0.5, 2)
    order = alice.post("/api/orders", json={"symbol": "NVDA", "side": "buy", "type": "limit", "quantity": 1, "limit_price": limit})
    order_id = order.json["order"]["id"]
    bob = login(app, "bob")
    refused = bob.post(f"/api/orders/{order_id}/cancel", json={})
    assert refused.status_code == 404 and refused.json == {"error": f"You have no order {order_id}."}
    assert state(app, "alice")["orders"][order_id] == "open"
    assert alice.post("/api/orders/999999/cancel", json={}).status_code == 404
    with app.broadcast.subscribe(f"user:{user_ids(app)['alice']}") as mine:
        cancelled = alice.post(f"/api/orders/{order_id}/cancel", json={})
        assert cancelled.status_code == 200
        assert cancelled.json["order"]["status"] == "cancelled" and cancelled.json["order"]["closed_at"].endswith("Z")
        assert [m["data"][0]["status"] for m in mine.queued() if m["kind"] == "orders"] == ["cancelled"]
    again = alice.post(f"/api/orders/{order_id}/cancel", json={})
    assert again.status_code == 409 and "cancelled" in again.json["error"]
    set_price(app, "NVDA", limit / 2)
    app.periodic_services["market"].run_once()
    assert state(app, "alice")["orders"][order_id] == "cancelled"  # a cancelled order never fills
    filled = state(app, "alice")["orders"][1]
    assert alice.post("/api/orders/1/cancel", json={}).status_code == 409 and filled == "filled"


def test_place_returns_the_order_as_written(desk: t.Any) -> None:
    """Without the view (whose broadcast reloads the rows), the order placed is the one in the database."""
    with desk.app.app_context():
        db = get_db()
        order = place(db, user_ids(desk.app)["alice"], OrderRequest("MSFT", "sell", "limit", 5, 1.0))
        assert (order.status, order.fill_price) == ("filled", QUOTES["MSFT"]) and order.closed_at is not None


def test_a_resting_order_that_can_no_longer_be_paid_for_is_rejected(desk: t.Any, alice: TetherClient) -> None:
    app = desk.app
    limit = round(state(app, "alice")["quotes"]["TSLA"] / 2, 2)
    order = alice.post("/api/orders", json={"symbol": "TSLA", "side": "buy", "type": "limit", "quantity": 10, "limit_price": limit})
    with app.app_context():  # as if another order had spent the cash at the same moment
        db = get_db()
        db.get(Balance, user_ids(app)["alice"]).cash = 5.0
        db.commit()
    set_price(app, "TSLA", limit / 2)
    app.periodic_services["market"].run_once()
    after = state(app, "alice")
    assert after["orders"][order.json["order"]["id"]] == "rejected"
    assert after["cash"] == 5.0 and "TSLA" not in after["positions"]


def test_an_order_placed_while_the_broadcast_is_down_is_placed_and_sent_later(
    desk: t.Any, alice: TetherClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = desk.app

    def down(channel: str, message: object) -> str:
        raise BroadcastUnavailable("Redis is down")

    monkeypatch.setattr(app.broadcast, "publish", down)
    response = alice.post("/api/orders", json={"symbol": "AMZN", "side": "buy", "quantity": 1})
    assert response.status_code == 201 and response.json["order"]["status"] == "filled"
    monkeypatch.undo()
    with app.broadcast.subscribe(f"user:{user_ids(app)['alice']}") as mine:
        app.periodic_services["refresh orders"].run_once()
        assert mine.queued()[0]["data"][0]["id"] == response.json["order"]["id"]


BAD_ORDERS = [
    ([], "The body must be a JSON object."),
    ("buy", "The body must be a JSON object."),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "price": 3}, "Unknown fields: price."),
    ({"side": "buy", "quantity": 1}, "symbol: one of AAPL, AMZN, GOOG, MSFT, NVDA, TSLA."),
    ({"symbol": "XXX", "side": "buy", "quantity": 1}, "symbol: one of"),
    ({"symbol": ["AAPL"], "side": "buy", "quantity": 1}, "symbol: one of"),
    ({"symbol": "AAPL", "side": "hold", "quantity": 1}, "side: buy or sell."),
    ({"symbol": "AAPL", "side": {}, "quantity": 1}, "side: buy or sell."),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "stop"}, "type: market or limit."),
    ({"symbol": "AAPL", "side": "buy"}, "quantity: a whole number from 1 to 1000000."),
    ({"symbol": "AAPL", "side": "buy", "quantity": 0}, "quantity: a whole number"),
    ({"symbol": "AAPL", "side": "buy", "quantity": -2}, "quantity: a whole number"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1.5}, "quantity: a whole number"),
    ({"symbol": "AAPL", "side": "buy", "quantity": "2"}, "quantity: a whole number"),
    ({"symbol": "AAPL", "side": "buy", "quantity": True}, "quantity: a whole number"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 10**40}, "quantity: a whole number"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "limit_price": 100}, "limit_price: only for limit orders."),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit"}, "limit_price: a price from 0.01 to 1000000"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "limit_price": 0}, "limit_price: a price"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "limit_price": -5}, "limit_price: a price"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "limit_price": "10"}, "limit_price: a price"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "limit_price": 10**400}, "limit_price: a price"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "limit_price": math.nan}, "limit_price: a price"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1, "type": "limit", "limit_price": math.inf}, "limit_price: a price"),
    ({"symbol": "AAPL", "side": "buy", "quantity": 1000}, "Not enough cash: "),
    ({"symbol": "AAPL", "side": "sell", "quantity": 11}, "Not enough AAPL to sell: 11 asked, 10 available."),
    ({"symbol": "TSLA", "side": "sell", "quantity": 1}, "Not enough TSLA to sell: 1 asked, 0 available."),
]


def test_a_bad_order_is_a_400_saying_what_is_wrong(desk: t.Any, alice: TetherClient) -> None:
    before = state(desk.app, "alice")
    for body, error in BAD_ORDERS:
        response = alice.post("/api/orders", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 400 and response.json["error"].startswith(error), (body, response.json)
    assert state(desk.app, "alice") == before


def test_a_body_that_is_not_json_is_a_400(alice: TetherClient) -> None:
    for raw in (b"", b"{", b"NaN", b"[" * 5000, b'{"symbol": "AAPL", "side": "buy", "quantity": 1,}', b"\xff"):
        response = alice.post("/api/orders", data=raw, content_type="application/json")
        assert response.status_code == 400 and response.json == {"error": "The body must be a JSON object."}, raw


def test_open_orders_hold_back_cash_and_shares(desk: t.Any, alice: TetherClient) -> None:
    before = state(desk.app, "alice")
    limit = round(before["quotes"]["GOOG"] / 2, 2)
    quantity = int(before["cash"] // limit)  # what is left is less than one more share at the limit
    reserve = alice.post("/api/orders", json={"symbol": "GOOG", "side": "buy", "type": "limit", "quantity": quantity, "limit_price": limit})
    assert reserve.json["order"]["status"] == "open"
    left = round(before["cash"] - quantity * limit, 2)
    refused = alice.post("/api/orders", json={"symbol": "AMZN", "side": "buy", "quantity": 1})
    assert refused.status_code == 400
    assert refused.json["error"] == f"Not enough cash: {before['quotes']['AMZN']:,.2f} needed, {left:,.2f} available."
    alice.post(f"/api/orders/{reserve.json['order']['id']}/cancel", json={})
    assert alice.post("/api/orders", json={"symbol": "AMZN", "side": "buy", "quantity": 1}).status_code == 201
    hold = alice.post("/api/orders", json={"symbol": "AAPL", "side": "sell", "type": "limit", "quantity": 8, "limit_price": 10_000})
    assert hold.json["order"]["status"] == "open"
    refused = alice.post("/api/orders", json={"symbol": "AAPL", "side": "sell", "quantity": 3})
    assert refused.status_code == 400 and refused.json["error"] == "Not enough AAPL to sell: 3 asked, 2 available."
    assert alice.post("/api/orders", json={"symbol": "AAPL", "side": "sell", "quantity": 2}).json["order"]["status"] == "filled"


def test_the_api_wants_a_login_json_and_the_same_origin(desk: t.Any, alice: TetherClient) -> None:
    order = {"symbol": "AAPL", "side": "buy", "quantity": 1}
    anonymous = desk.app.test_client().post("/api/orders", json=order)
    assert anonymous.status_code == 401 and anonymous.json == {"error": "Log in first."}
    assert desk.app.test_client().post("/api/orders/1/cancel", json={}).status_code == 401
    form = alice.post("/api/orders", data=order)  # what a cross-site form could send
    assert form.status_code == 415 and form.json == {"error": "Send JSON (Content-Type: application/json)."}
    foreign = alice.post("/api/orders", json=order, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json == {"error": "Requests from other sites are refused."}
    assert alice.post("/api/orders/1/cancel", json={}, headers={"Origin": "null"}).status_code == 403
    assert alice.post("/api/orders", json=order, headers={"Origin": "http://localhost"}).status_code == 201
    assert state(desk.app, "alice")["orders"][1] == "filled"  # the seeded order: nothing cancelled it
    cookie = alice.get_cookie("session")
    assert cookie is not None and cookie.same_site == "Lax"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def orders(draw: st.DrawFn) -> object:
    """A valid order with one field dropped or made any JSON value, or any JSON value."""
    if draw(st.booleans()):
        return draw(JSON)
    order: dict[str, object] = {
        "symbol": draw(st.sampled_from(sorted(QUOTES))),
        "side": draw(st.sampled_from(["buy", "sell"])),
        "type": draw(st.sampled_from(["market", "limit"])),
        "quantity": draw(st.integers(1, 20)),
    }
    if order["type"] == "limit":
        order["limit_price"] = draw(st.floats(1, 1000))
    field = draw(st.sampled_from(["symbol", "side", "type", "quantity", "limit_price", "other"]))
    if draw(st.booleans()):
        order.pop(field, None)
    else:
        order[field] = draw(JSON)
    return order


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=orders())
def test_no_order_body_is_a_server_error(alice: TetherClient, body: object) -> None:
    response = alice.post("/api/orders", data=json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400), response.text
    assert ("order" if response.status_code == 201 else "error") in response.json
