"""Flask's way of wrapping an app (``app.wsgi_app = ProxyFix(app.wsgi_app)``,
APM tools patching ``Flask.__call__`` / ``wsgi_app``) under ASGI as under
WSGI: the same app, with sentry-sdk, OpenTelemetry, prometheus-flask-exporter
and ProxyFix together, served by uvicorn and by gunicorn, gives the same answers."""

from __future__ import annotations

import json
import sys
import time
import typing as t
from pathlib import Path

import pytest
import requests

from support import Servers

SERVERS = Path(__file__).parent / "servers"
PYTHON = sys.executable

COMMANDS = {
    "uvicorn": [PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "wrapped_app:app"],
    "gunicorn": [PYTHON, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", "1", "wrapped_app:app"],
}

FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shop.example.org",
    "X-Forwarded-Prefix": "/shop",
}
BEHIND_PROXY = {
    "scheme": "https",
    "host": "shop.example.org",
    "remote_addr": "203.0.113.7",
    "script_root": "/shop",
    "external": "https://shop.example.org/shop/info/0",
}


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def exercise(server: str, serve: object, tmp_path: Path) -> dict:
    """Everything the app answers and reports, on one server."""
    sentry, spans = tmp_path / f"{server}-sentry.jsonl", tmp_path / f"{server}-spans.jsonl"
    env = {"SENTRY_FILE": str(sentry), "SPANS_FILE": str(spans)}
    port = serve(COMMANDS[server], cwd=SERVERS, env=env)  # type: ignore[operator]
    base = f"http://127.0.0.1:{port}"
    seen: dict = {}
    seen["info"] = requests.get(base + "/info/0", headers=FORWARDED, timeout=10).json()
    seen["async"] = requests.get(base + "/async-info", headers=FORWARDED, timeout=10).json()
    with requests.get(base + "/stream", headers=FORWARDED, stream=True, timeout=10) as response:
        seen["stream"] = [json.loads(line) for line in response.iter_lines() if line]
    redirect = requests.get(base + "/go", headers=FORWARDED, allow_redirects=False, timeout=10)
    seen["redirect"] = (redirect.status_code, redirect.headers["Location"])
    seen["boom"] = requests.get(base + "/boom", headers=FORWARDED, timeout=10).status_code
    seen["metrics"] = requests.get(base + "/metrics", timeout=10).text
    events = [e for e in wait_for_records(sentry, lambda rs: any(r.get("type") != "transaction" for r in rs))]
    seen["errors"] = [e for e in events if e.get("type") != "transaction"]
    seen["transactions"] = [e for e in events if e.get("type") == "transaction"]
    seen["spans"] = wait_for_records(spans, lambda rs: len(rs) >= 5)
    seen["port"] = port
    return seen


def wait_for_records(path: Path, done: t.Callable[[list[dict]], bool]) -> list[dict]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = records(path)
        if done(found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"not all records arrived in {path}: {records(path)}")


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[dict[str, dict]]:
    """Both servers exercised once for the module's tests; they serve until its end."""
    servers = Servers()
    try:
        yield {name: exercise(name, servers, tmp_path_factory.mktemp(name)) for name in COMMANDS}
    finally:
        for proc in servers.procs:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.parametrize("server", list(COMMANDS))
def test_proxy_fix_is_seen_by_views_streams_and_redirects(server: str, answers: dict[str, dict]) -> None:
    seen = answers[server]
    assert seen["info"] == BEHIND_PROXY
    assert seen["async"] == BEHIND_PROXY
    assert seen["stream"] == [BEHIND_PROXY] * 3
    assert seen["redirect"] == (302, "/shop/info/1")


def test_proxy_fix_is_seen_by_a_websocket_handshake(answers: dict[str, dict]) -> None:
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{answers['uvicorn']['port']}/ws", additional_headers=FORWARDED) as ws:
        assert json.loads(ws.recv(timeout=10)) == BEHIND_PROXY


@pytest.mark.parametrize("server", list(COMMANDS))
def test_sentry_captures_errors_with_request_data_and_names_transactions(server: str, answers: dict[str, dict]) -> None:
    seen = answers[server]
    assert seen["boom"] == 500
    [error] = seen["errors"]
    assert error["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    request = error["request"]
    assert request["method"] == "GET" and request["url"].endswith("/boom")
    assert {k.lower(): v for k, v in request["headers"].items()}["x-forwarded-host"] == "shop.example.org"
    assert error["transaction"] == "boom"
    names = {tx["transaction"] for tx in seen["transactions"]}
    assert {"info", "async_info", "stream", "go", "boom"} <= names


@pytest.mark.parametrize("server", list(COMMANDS))
def test_opentelemetry_makes_a_span_per_request_named_by_route(server: str, answers: dict[str, dict]) -> None:
    spans = {span["name"]: span["attributes"] for span in answers[server]["spans"]}
    assert {"GET /info/<int:n>", "GET /async-info", "GET /stream", "GET /go", "GET /boom"} <= set(spans)
    info = spans["GET /info/<int:n>"]
    assert info["http.route"] == "/info/<int:n>"
    assert info.get("http.method", info.get("http.request.method")) == "GET"
    assert info["http.host"] == "shop.example.org"  # what ProxyFix set


@pytest.mark.parametrize("server", list(COMMANDS))
def test_prometheus_counts_requests_by_endpoint_and_status(server: str, answers: dict[str, dict]) -> None:
    metrics = answers[server]["metrics"]
    assert 'flask_http_request_duration_seconds_count{method="GET",path="/info/0",status="200"} 1.0' in metrics
    assert 'flask_http_request_duration_seconds_count{method="GET",path="/boom",status="500"} 1.0' in metrics
    assert 'flask_http_request_total{method="GET",status="302"} 1.0' in metrics


def test_the_same_answers_under_uvicorn_as_under_gunicorn(answers: dict[str, dict]) -> None:
    asgi, wsgi = answers["uvicorn"], answers["gunicorn"]
    for key in ("info", "async", "stream", "redirect", "boom"):
        assert asgi[key] == wsgi[key], key
    assert sorted(s["name"] for s in asgi["spans"]) == sorted(s["name"] for s in wsgi["spans"])
    assert sorted(tx["transaction"] for tx in asgi["transactions"]) == sorted(tx["transaction"] for tx in wsgi["transactions"])
