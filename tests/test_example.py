"""The README's example app (examples/progress)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import tether

EXAMPLE = Path(__file__).parent.parent / "examples" / "progress" / "app.py"


def load_app() -> tether.Tether:
    spec = importlib.util.spec_from_file_location("progress_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.app.config.update(STEP_DELAY=0, TESTING=True)
    return module.app


def events(response: object) -> list[dict[str, str]]:
    text = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return [json.loads(block[len("data: "):]) for block in text.split("\n\n") if block]


def test_jobs_stream_progress_read_from_the_request() -> None:
    client = load_app().test_client()
    new = client.post("/api/vm/new", json={"name": "Carousell_HK_003", "node": "HK_061", "app_type": "Carousell"})
    assert new.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert new.headers["Cache-Control"] == "no-cache" and new.headers["X-Accel-Buffering"] == "no"
    assert [e["type"] for e in events(new)] == ["log", "log", "success"]
    assert events(new)[-1]["message"] == "VM account Carousell_HK_003 created"
    assert events(client.post("/api/vm/save", json={"device_id": "d1"}))[-1]["message"] == "account on d1 saved"
    assert events(client.post("/api/vm/load", json={}))[-1] == {"type": "error", "message": "missing field 'name'"}
    page = client.get("/")
    assert "Jobs you started: <b id=\"jobs\">3</b>" in page.get_data(as_text=True)
