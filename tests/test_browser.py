"""The trading desk in a real headless Chromium (Playwright driving Debian's chromium)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import Servers

ROOT = Path(__file__).parent.parent
CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def chromium_path() -> str:
    if CHROMIUM is None:
        if os.environ.get("TETHER_REQUIRE_SERVICES") == "1":
            pytest.fail("Chromium is required (apt-get install chromium): .ci/run installs it")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def test_live_desk_in_a_browser(serve: Servers, tmp_path: Path, chromium_path: str) -> None:
    from playwright.sync_api import sync_playwright

    env = {
        "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}",
        "TETHER_DATABASE_URL": f"sqlite:///{tmp_path}/desk.db",
        "TETHER_MARKET_INTERVAL": "0.2",
        "TETHER_REFRESH_INTERVALS": json.dumps({"balance": 0.3, "positions": 0.3, "pnl": 0.3, "orders": 0.5}),
    }
    port = serve([sys.executable, "-m", "tether", "--app", "examples/trading/app.py", "run", "--port", "{port}"], cwd=ROOT, env=env)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            for transport, query in (("WebSocket", ""), ("server-sent events", "?sse")):
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.fill("input[name=name]", "alice")
                page.fill("input[name=password]", "alice")
                page.click("#login")
                page.wait_for_url("**/desk")
                if query:
                    page.goto(f"http://127.0.0.1:{port}/desk{query}")
                page.wait_for_function("document.getElementById('balance').textContent !== '…'", timeout=20_000)
                assert page.text_content("#transport") == transport
                first = page.text_content("#pnl")
                page.wait_for_function(
                    f"document.getElementById('pnl').textContent !== {json.dumps(first)}", timeout=20_000
                )
                received = page.evaluate("window.received")
                assert len(received) > 4
                assert {message["user"] for message in received} == {received[0]["user"]}
                content = page.content()
                assert "AAPL" in content and "MSFT" in content
                assert "TSLA" not in content and "NVDA" not in content
                page.screenshot(path=str(tmp_path / f"desk{query or '-ws'}.png"))
                page.close()
        finally:
            browser.close()
