"""ASGI servers that send no lifespan (daphne, ``uvicorn --lifespan off``): the
app starts before its first request is answered, once per worker, on the
serving loop; open streams end at SIGTERM; ``after_serving`` runs at the stop."""

from __future__ import annotations

import concurrent.futures
import signal
import sys
from pathlib import Path

import pytest
import requests

from support import wait_for_lines

SERVERS = Path(__file__).parent / "servers"
PYTHON = sys.executable

COMMANDS = {
    "daphne": [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "nolifespan_app:app"],
    "uvicorn-lifespan-off": [
        PYTHON, "-m", "uvicorn", "--lifespan", "off", "--host", "127.0.0.1", "--port", "{port}", "nolifespan_app:app",
    ],
}


def lines_of(path: Path) -> list[str]:
    """The recorded lines without the process id."""
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("server", list(COMMANDS))
def test_app_starts_on_first_request_and_stops_with_the_server(server: str, serve: object, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    port = serve(COMMANDS[server], cwd=SERVERS, env={"EVENTS_FILE": str(events)})  # type: ignore[operator]
    base = f"http://127.0.0.1:{port}"
    with concurrent.futures.ThreadPoolExecutor(6) as pool:  # first requests arriving together
        answers = list(pool.map(lambda _: requests.get(base + "/", timeout=10), range(6)))
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.text.startswith("ok tether-sync") for a in answers)
    started = lines_of(events)
    assert len([line for line in started if line.startswith("before_serving")]) == 1
    # before_serving finished before any request was answered, on the loop the views run on.
    serving_loop = requests.get(base + "/loop", timeout=10).text
    assert started[0] == f"before_serving {serving_loop}"

    wait_for_lines(events, 4)  # the periodic service runs, on the serving loop
    ticks = [line for line in lines_of(events) if line.startswith("tick")]
    assert ticks and set(ticks) == {f"tick {serving_loop}"}

    stream = requests.get(base + "/endless", stream=True, timeout=10)
    chunks = stream.iter_content(chunk_size=None)
    assert next(chunks).startswith(b"tick")
    proc = serve.procs[-1]  # type: ignore[attr-defined]
    proc.send_signal(signal.SIGTERM)
    try:
        b"".join(chunks)  # returns: the open stream ends rather than holding the stop up
    except requests.exceptions.ChunkedEncodingError:
        assert server == "daphne"  # daphne cuts the connections it still has as it stops
    assert proc.wait(timeout=20) is not None
    recorded = lines_of(events)
    assert "stream ended" in recorded
    assert recorded.count("after_serving") == 1
    assert recorded[-1] == "after_serving"
    assert len([line for line in recorded if line.startswith("before_serving")]) == 1


def test_keyword_call_as_daphne_makes_it() -> None:
    """daphne calls ``app(scope=..., receive=..., send=...)``; so may others."""
    import asyncio

    import tether

    app = tether.Tether(__name__)
    app.route("/")(lambda: "by name")
    sent: list[dict[str, object]] = []

    async def main() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"", "headers": [(b"host", b"x")],
            "server": ("x", 80), "client": ("127.0.0.1", 1),
        }

        async def receive() -> dict[str, object]:
            await asyncio.sleep(3600)
            return {}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app(scope=scope, receive=receive, send=send)
        await app.__call__(scope, receive=receive, send=send)

    asyncio.run(main())
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200]
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == [b"by name", b"by name"]


def test_a_request_after_a_lifespan_ended_does_not_start_the_app_again() -> None:
    """The first-request start is for servers that send no lifespan: a request
    that arrives while a lifespan shuts the app down is answered, not a reason
    to run ``before_serving`` again."""
    import tether

    app = tether.Tether(__name__)
    calls: list[str] = []
    app.before_serving(lambda: calls.append("before"))
    app.after_serving(lambda: calls.append("after"))
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client(asgi=True)
    with client.lifespan():
        assert client.get("/").text == "ok"
    assert client.get("/").text == "ok"
    assert calls == ["before", "after"]
