"""The differential suite: one app (tests/differential_app.py) on real Flask
3.1.3, on tether under WSGI and on tether under ASGI gets the same generated
requests; status, headers, body and what the view saw must be the same,
except for the differences listed in :data:`ON_PURPOSE` (and in docs/coming-from-flask.md).

``FUZZ_EXAMPLES=5000 pytest tests/test_differential.py`` runs a longer search.
"""

from __future__ import annotations

import io
import json
import os
import re
import typing as t
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import HealthCheck, assume, example, given, settings

from differential_app import FLASK, TETHER, build
from differential_wire import Answer, Wire, asgi_scope, scope_of_test_client, through_asgi, through_wsgi, wires

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))

APPS = {"flask": build(FLASK), "tether": build(TETHER)}
OVERRIDE_APPS = {"flask": build(FLASK, dumps_override=True), "tether": build(TETHER, dumps_override=True)}


def _json_400_says_why(answer: Answer) -> Answer:
    """A malformed JSON body's 400 says what is wrong (tether) rather than
    Flask's generic sentence outside debug mode: the client can fix its request."""
    if answer.status == 400 and (b"Failed to decode JSON object" in answer.body or b"could not understand" in answer.body):
        answer.body = re.sub(rb"<p>.*</p>", b"<p>(why)</p>", answer.body, flags=re.S)
        answer.headers = [(k, str(len(answer.body)) if k.lower() == "content-length" else v) for k, v in answer.headers]
    return answer


#: Differences kept on purpose: each normalizes both answers, with its reason
#: in its docstring (docs/coming-from-flask.md's "differs on purpose" says the same).
ON_PURPOSE: list[t.Callable[[Answer], Answer]] = [_json_400_says_why]


def normalized(answer: Answer) -> dict[str, t.Any]:
    for rule in ON_PURPOSE:
        answer = rule(answer)
    body: t.Any = answer.body
    if any(k.lower() == "content-type" and "json" in v for k, v in answer.headers):
        try:
            body = json.loads(body)
        except ValueError:
            pass
    return {"status": answer.status, "headers": answer.headers, "body": body}


def lowered(answer: dict[str, t.Any]) -> dict[str, t.Any]:
    """ASGI sends header names lowercased: compare the names that way."""
    return {**answer, "headers": [(k.lower(), v) for k, v in answer["headers"]]}


def differences(ours: t.Any, theirs: t.Any, where: str = "") -> list[str]:
    """Where two answers differ, as ``path: ours != theirs`` lines."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [line for key in sorted(set(ours) | set(theirs), key=str)
                for line in differences(ours.get(key, "<absent>"), theirs.get(key, "<absent>"), f"{where}.{key}")]
    if ours != theirs:
        return [f"{where}: {ours!r} != {theirs!r}"]
    return []


def compare(apps: dict[str, t.Any], wire: Wire) -> None:
    flask = normalized(through_wsgi(apps["flask"], wire))
    tether_wsgi = normalized(through_wsgi(apps["tether"], wire))
    assert tether_wsgi == flask, ["tether (WSGI) != Flask", *differences(tether_wsgi, flask)]
    tether_asgi = lowered(normalized(through_asgi(apps["tether"], wire)))
    assert tether_asgi == lowered(flask), ["tether (ASGI) != Flask", *differences(tether_asgi, lowered(flask))]


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(wire=wires())
@example(wire=Wire("GET", "/see", b"a=1&a=2", (("Host", "localhost"), ("User-Agent", "ua"), ("x-One", "1")), b""))
@example(wire=Wire("POST", "/see", b"", (("Host", "h"), ("Content-Type", "application/json"), ("Content-Length", "1")), b"{"))
@example(wire=Wire("POST", "/json", b"", (("Host", "h"), ("Content-Type", "application/json"), ("Content-Length", "1")), b"{"))
@example(wire=Wire("GET", "/see/0%0A", b"", (("Host", "localhost"),), b""))
def test_flask_and_tether_answer_alike(wire: Wire) -> None:
    compare(APPS, wire)


@SETTINGS
@given(wire=wires(["/dict", "/list", "/jsonify", "/jsonify-args", "/see", "/tuple-all", "/missing", "/handled"]))
def test_a_json_provider_that_overrides_dumps_makes_every_json_response(wire: Wire) -> None:
    compare(OVERRIDE_APPS, wire)


@pytest.mark.parametrize("path", ["/dict", "/jsonify", "/missing", "/handled", "/tuple-all"])
def test_the_dumps_override_is_used_everywhere(path: str) -> None:
    wire = Wire("GET", path, b"", (("Host", "localhost"),), b"")
    for answer in (through_wsgi(OVERRIDE_APPS["tether"], wire), through_asgi(OVERRIDE_APPS["tether"], wire)):
        assert json.loads(answer.body)["via"] == "override", answer


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None)
@given(wire=wires().filter(lambda w: not any("_" in name for name, _ in w.headers)))
def test_the_asgi_test_client_builds_the_scope_uvicorn_builds(wire: Wire) -> None:
    try:  # Werkzeug's client can only send a path whose bytes are UTF-8
        unquote_to_bytes(wire.path).decode()
    except UnicodeDecodeError:
        assume(False)
    scope = scope_of_test_client(APPS["tether"], wire)
    expected = asgi_scope(wire)
    for key in ("type", "http_version", "method", "scheme", "path", "root_path", "query_string"):
        assert scope[key] == expected[key], key
    # The same bytes, percent-encoded (which characters were escaped is lost in the environ).
    assert scope["raw_path"].isascii() and unquote_to_bytes(scope["raw_path"]) == unquote_to_bytes(expected["raw_path"])
    for key in ("server", "client"):
        assert isinstance(scope[key], tuple) and [type(v) for v in scope[key]] == [str, int], key
    assert all(isinstance(n, bytes) and n == n.lower() for n, _ in scope["headers"])
    sent = [(n, v) for n, v in expected["headers"] if n not in (b"host", b"content-length", b"content-type")]
    assume(len({n for n, _ in sent}) == len(sent))  # the test client joins repeated headers
    assert set(sent) <= set(scope["headers"])


def through_test_client(app: t.Any, wire: Wire, **options: t.Any) -> Answer:
    response = app.test_client(use_cookies=False, **options).open(
        wire.path, f"http://localhost{wire.root}", method=wire.method, query_string=wire.query.decode("ascii"),
        headers=list(wire.headers), input_stream=io.BytesIO(wire.body),
    )
    return Answer(response.status_code, [(k, v) for k, v in response.headers.to_wsgi_list() if k.lower() != "date"], response.get_data())


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wire=wires())
def test_the_test_clients_answer_as_flasks(wire: Wire) -> None:
    """What users see in their own tests: Flask's client, tether's, and tether's with ``asgi=True``.
    (Werkzeug's client drops a chunked body, where servers deliver it: not compared.)"""
    assume(not any(name == "Transfer-Encoding" for name, _ in wire.headers))
    flask = normalized(through_test_client(APPS["flask"], wire))
    for options in ({}, {"asgi": True}):
        ours = normalized(through_test_client(APPS["tether"], wire, **options))
        assert lowered(ours) == lowered(flask), [f"tether {options} != Flask", *differences(ours, flask)]
