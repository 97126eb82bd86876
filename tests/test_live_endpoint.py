"""Channel rules (``app.channel``) and the live endpoint (``app.live``), in process."""

from __future__ import annotations

import pytest

from tether import Tether, session
from tether.live.channels import LIVE_ONLY, ChannelPolicy
from tether.live.sse import EventStream


def rules_app() -> Tether:
    app = Tether(__name__)
    app.secret_key = "test"
    app.live("/live")

    @app.channel("room:<name>")
    def room(name: str) -> bool:
        return name != "secret"

    @app.channel("user:<int:id>")
    def user(id: int) -> bool:
        return session.get("user_id") == id

    @app.channel("news:<name>")
    def news(name: str) -> object:
        return LIVE_ONLY

    @app.get("/login/<int:id>")
    def login(id: int) -> str:
        session["user_id"] = id
        return "ok"

    return app


def test_no_rule_allows_every_channel() -> None:
    policy = ChannelPolicy()
    assert policy.access("anything/at all").value == "full"


@pytest.mark.parametrize(
    ("channel", "allowed"),
    [
        ("room:lobby", True),
        ("room:secret", False),
        ("room:a b%2F?#é", True),
        ("room:a/b", False),  # a value never spans a '/'
        ("/room:lobby", False),  # not room:lobby's answer
        ("room:lobby/", False),
        ("room:secret/", False),
        ("room:", False),
        ("user:7", True),
        ("user:007", False),  # a different channel from user:7
        ("user:8", False),
        ("other", False),  # no rule: refused once rules exist
        ("", False),
        ("room:\ud800", False),  # cannot be built back (not UTF-8): refused, never let through
    ],
)
def test_rules_match_whole_names_only(channel: str, allowed: bool) -> None:
    app = rules_app()
    with app.test_request_context("/"):
        session["user_id"] = 7
        assert (app.channel_policy.access(channel).value != "refused") is allowed


def test_live_only_rule() -> None:
    app = rules_app()
    with app.test_request_context("/"):
        assert app.channel_policy.access("news:x") is LIVE_ONLY


def test_websocket_join_leave_refuse_and_resume() -> None:
    app = rules_app()
    client = app.test_client(asgi=True)
    client.get("/login/7")
    first = app.broadcast.publish("room:a", "old")
    with client.lifespan(), client.websocket("/live/ws") as ws:
        ws.send_json({"join": "user:8"})
        assert ws.receive_json() == {"event": "refused", "channel": "user:8"}
        ws.send_json({"join": "room:a", "last_id": "0-0"})
        got = [ws.receive_json(), ws.receive_json()]
        joined = next(item for item in got if item.get("event") == "joined")
        assert joined == {"event": "joined", "channel": "room:a", "position": "0-0"}
        old = next(item for item in got if item.get("event") != "joined")
        assert old == {"channel": "room:a", "id": first, "event": None, "data": "old"}
        ws.send_json({"join": "user:7"})
        assert ws.receive_json()["event"] == "joined"
        app.broadcast.publish("user:7", {"n": 1}, event="chat")
        assert ws.receive_json()["data"] == {"n": 1}
        ws.send_json({"leave": "room:a"})
        assert ws.receive_json() == {"event": "left", "channel": "room:a"}
        ws.send_json({"join": "news:x", "last_id": "0-0"})  # live only: no history
        assert ws.receive_json()["event"] == "joined"
        app.broadcast.publish("room:a", "unheard")
        last = app.broadcast.publish("news:x", "fresh")
        assert ws.receive_json() == {"channel": "news:x", "id": last, "event": None, "data": "fresh"}


def test_sse_fallback_refuses_and_resumes() -> None:
    app = rules_app()
    client = app.test_client()
    before = app.broadcast.publish("room:a", 1)
    app.broadcast.publish("room:a", 2)
    response = client.get(
        "/live/events", query_string={"channels": ["room:a", "room:secret"], "last_ids": f"room%3Aa={before}"},
        buffered=False,
    )
    chunks = response.iter_encoded()
    text = ""
    while "data: {\"channel\": \"room:a\", \"data\": 2}" not in text:
        text += next(chunks).decode()
    response.close()
    assert 'event: refused\ndata: {"channel": "room:secret", "event": "refused"}' in text
    assert "event: joined" in text
    assert '"data": 1}' not in text


def test_event_stream_and_relay_obey_the_rules() -> None:
    app = rules_app()

    @app.get("/raw")
    def raw() -> EventStream:
        return EventStream(app.broadcast.subscribe_many(["room:secret", "room:a"]))

    @app.websocket("/raw-ws")
    async def raw_ws() -> None:
        from tether import websocket

        await websocket.relay(app.broadcast.subscribe("room:secret", last_id="0-0"))

    app.broadcast.publish("room:secret", "hidden")
    client = app.test_client(asgi=True)
    with client.lifespan():
        response = client.get("/raw", buffered=False)
        first = next(response.iter_encoded()).decode()
        response.close()
        assert first == 'event: refused\ndata: {"channel": "room:secret", "event": "refused"}\n\n'
        with client.websocket("/raw-ws") as ws:
            assert ws.receive_json() == {"event": "refused", "channel": "room:secret"}


def test_client_script_is_served() -> None:
    app = rules_app()
    with app.test_request_context("/"):
        from tether import url_for

        assert url_for("live.client") == "/live/client.js"
    response = app.test_client().get("/live/client.js")
    assert response.mimetype == "text/javascript"
    assert b"class TetherLive" in response.data
