"""WebSockets: the websocket proxy and context, hooks, teardown once however the
connection ends, rejection, Origin checks, sync handlers."""

from __future__ import annotations

import asyncio

import pytest

import tether
from tether import Blueprint, current_app, g, session, websocket
from tether.testing import ConnectionClosed, WebSocketRejected


@pytest.fixture
def events(app: tether.Tether) -> list[str]:
    recorded: list[str] = []
    app.teardown_websocket(lambda exc: recorded.append(f"teardown {type(exc).__name__}"))
    return recorded


def test_echo_with_context_and_handshake_data(app: tether.Tether, events: list[str]) -> None:
    @app.before_websocket
    def before() -> None:
        g.user = session.get("user", "anonymous")

    @app.websocket("/echo")
    async def echo() -> None:
        await websocket.accept()
        await websocket.send(f"hello {g.user} from {current_app.name} at {websocket.path}?{websocket.args['room']}")
        async for message in websocket:
            await websocket.send(message.upper() if isinstance(message, str) else message[::-1])

    client = app.test_client()
    with client.session_transaction() as sess:
        sess["user"] = "ada"
    with client.websocket("/echo?room=7") as ws:
        assert ws.receive() == "hello ada from test_app at /echo?7"
        ws.send("ping")
        assert ws.receive() == "PING"
        ws.send(b"abc")
        assert ws.receive() == b"cba"
    assert events == ["teardown NoneType"]


def test_json_subprotocol_headers_and_close(app: tether.Tether, events: list[str]) -> None:
    @app.websocket("/json")
    async def json_socket() -> None:
        await websocket.accept(subprotocol=websocket.subprotocols[-1], headers={"X-Server": "tether"})
        data = await websocket.receive_json()
        await websocket.send_json({"sum": sum(data["numbers"]), "cookie": websocket.cookies.get("c")})
        await websocket.close(4000, "done")

    client = app.test_client()
    client.set_cookie("c", "v")
    with client.websocket("/json", subprotocols=["chat", "json"]) as ws:
        assert ws.accepted_subprotocol == "json" and (b"x-server", b"tether") in ws.accept_headers
        ws.send_json({"numbers": [1, 2, 3]})
        assert ws.receive_json() == {"sum": 6, "cookie": "v"}
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
        assert closed.value.code == 4000
    assert events == ["teardown NoneType"]


def test_sync_handler_blocks_its_thread_not_the_loop(app: tether.Tether, events: list[str]) -> None:
    import threading

    names: list[str] = []

    @app.websocket("/sync")
    def sync_handler() -> None:
        names.append(threading.current_thread().name)
        websocket.send("ready")
        for message in websocket:
            websocket.send(f"got {message} for {g.get('who', 'nobody')}")

    @app.before_websocket
    def who() -> None:
        g.who = "sync"

    with app.test_client().websocket("/sync") as ws:
        assert ws.receive() == "ready"
        ws.send("x")
        assert ws.receive() == "got x for sync"
    assert names[0].startswith("tether-websocket") and events == ["teardown NoneType"]


def test_teardown_once_when_the_client_vanishes_or_the_handler_fails(app: tether.Tether, events: list[str]) -> None:
    @app.websocket("/wait")
    async def wait() -> None:
        await websocket.receive()

    @app.websocket("/fail")
    async def fail() -> None:
        await websocket.accept()
        await websocket.receive()
        raise ValueError("handler failed")

    client = app.test_client()
    with client.websocket("/wait") as ws:
        ws.close(1006)
    assert events == ["teardown NoneType"]
    with client.websocket("/fail") as ws:
        ws.send("boom")
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive()
        assert closed.value.code == 1011
    assert events == ["teardown NoneType", "teardown ValueError"]


def test_teardown_once_when_the_server_stops(app: tether.Tether, events: list[str]) -> None:
    finished: list[str] = []

    @app.websocket("/forever")
    async def forever() -> None:
        await websocket.accept()
        try:
            await asyncio.Event().wait()
        finally:
            finished.append("handler finally")

    client = app.test_client()
    with client.lifespan():
        with client.websocket("/forever") as ws:
            client.transport.loop.call_soon_threadsafe(app.serving.stopping.set)
            with pytest.raises(ConnectionClosed) as closed:
                ws.receive()
            assert closed.value.code == 1012
    assert finished == ["handler finally"] and events == ["teardown NoneType"]


def test_rejection_before_accepting(app: tether.Tether, events: list[str]) -> None:
    @app.websocket("/private")
    async def private() -> tuple[str, int] | None:
        if websocket.args.get("token") != "secret":
            return "token required", 401
        await websocket.accept()
        return None

    @app.websocket("/abort")
    async def aborting() -> None:
        tether.abort(403)

    @app.websocket("/crash")
    async def crash() -> None:
        raise RuntimeError("before accept")

    client = app.test_client()
    with pytest.raises(WebSocketRejected) as rejected:
        with client.websocket("/private"):
            pass
    assert rejected.value.status == 401 and rejected.value.body == b"token required"
    with client.websocket("/private?token=secret"):
        pass
    with pytest.raises(WebSocketRejected) as aborted:
        with client.websocket("/abort"):
            pass
    assert aborted.value.status == 403
    app.config["PROPAGATE_EXCEPTIONS"] = False
    with pytest.raises(WebSocketRejected) as crashed:
        with client.websocket("/crash"):
            pass
    assert crashed.value.status == 500
    with pytest.raises(WebSocketRejected) as missing:
        with client.websocket("/nowhere"):
            pass
    assert missing.value.status == 404
    # Every rejection's response is finished in the connection's context, which
    # is then torn down: the unmatched URL's too.
    assert len(events) == 5


def test_origin_is_checked(app: tether.Tether) -> None:
    @app.websocket("/ws")
    async def ws_handler() -> None:
        await websocket.send("in")

    client = app.test_client()
    with client.websocket("/ws", headers={"Origin": "http://localhost"}) as ws:
        assert ws.receive() == "in"
    with pytest.raises(WebSocketRejected) as rejected:
        with client.websocket("/ws", headers={"Origin": "https://evil.example"}):
            pass
    assert rejected.value.status == 403 and b"evil.example" in rejected.value.body
    app.config["WEBSOCKET_ALLOWED_ORIGINS"] = ["https://app.example"]
    with client.websocket("/ws", headers={"Origin": "https://app.example"}) as ws:
        assert ws.receive() == "in"


def test_blueprint_websocket_and_hooks(app: tether.Tether) -> None:
    bp = Blueprint("live", __name__, url_prefix="/live")
    calls: list[str] = []

    @bp.before_websocket
    def before() -> None:
        calls.append("before")

    @bp.after_websocket
    def after() -> None:
        calls.append("after")

    @bp.teardown_websocket
    def teardown(exc: BaseException | None) -> None:
        calls.append("teardown")

    @bp.websocket("/feed")
    async def feed() -> None:
        await websocket.send(tether.request.endpoint)

    app.register_blueprint(bp)
    with app.test_client().websocket("/live/feed") as ws:
        assert ws.receive() == "live.feed"
    assert calls == ["before", "after", "teardown"]


def test_http_request_to_a_websocket_route_explains(app: tether.Tether) -> None:
    app.websocket("/ws")(lambda: None)
    response = app.test_client().get("/ws")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "/ws is a WebSocket endpoint" in text
    wsgi_response = app.test_client(asgi=False).get("/ws", headers={"Upgrade": "websocket"})
    assert "need an ASGI server" in wsgi_response.get_data(as_text=True)


def test_relay_a_sync_source_that_reads_the_request(app: tether.Tether) -> None:
    @app.websocket("/count")
    async def count() -> None:
        def numbers() -> object:
            for n in range(int(websocket.args["to"])):
                yield {"n": n, "path": tether.request.path}

        await websocket.relay(numbers())

    with app.test_client().websocket("/count?to=3") as ws:
        assert [ws.receive_json() for _ in range(3)] == [{"n": n, "path": "/count"} for n in range(3)]
