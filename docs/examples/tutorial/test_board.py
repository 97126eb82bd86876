import pytest
from board import app


@pytest.fixture
def client():
    app.config.update(TESTING=True, REPORT_STEP_SECONDS=0)
    return app.test_client(asgi=True)  # through the ASGI adapter, as uvicorn serves it


def board_after(client, last_id, count):
    """The next ``count`` board messages after ``last_id``, clock ticks left out:
    what a page reconnecting with that Last-Event-ID is sent."""
    board = client.get("/events", headers={"Last-Event-ID": last_id}, buffered=False)
    events = []
    for event in board.iter_events():
        if '"kind": "tick"' not in event["data"]:
            events.append(event)
        if len(events) == count:
            board.close()  # as a browser leaving
            return events


def test_the_page_loads_the_board(client):
    page = client.get("/").text
    assert 'new EventSource("/events")' in page and "/notes?name=" in page


def test_a_note_reaches_every_page(client):
    with client.websocket("/notes?name=ann") as ws:
        ws.send("hello")
        first = ws.receive_json()["posted"]
        ws.send("again")
        second = ws.receive_json()["posted"]
    [event] = board_after(client, first, 1)  # resumed after the first: only the second
    assert event["id"] == second and '"text": "again"' in event["data"]


def test_a_report_runs_in_the_background(client):
    mark = app.broadcast.publish("board", {"kind": "mark"})
    assert client.post("/reports", json={"size": 2}).status_code == 202
    steps = [event["data"] for event in board_after(client, mark, 2)]
    assert '"step": 1' in steps[0] and '"step": 2' in steps[1]


def test_the_clock_ticks(client):
    client.get("/")  # the first request starts the services
    mark = app.broadcast.publish("board", {"kind": "mark"})
    app.periodic_services["clock"].run_once()
    board = client.get("/events", headers={"Last-Event-ID": mark}, buffered=False)
    assert '"kind": "tick"' in next(board.iter_events())["data"]
    board.close()
