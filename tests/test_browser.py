"""The trading desk in a real headless Chromium (Playwright driving Debian's chromium)."""

from __future__ import annotations

import json
import os
import sys
import typing as t
from pathlib import Path

import pytest

from support import FLAGS, Servers, free_port, need_redis, wait_for_port

ROOT = Path(__file__).parent.parent


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
                held = page.text_content("#positions") or ""  # the prices of every symbol are public
                assert "AAPL" in held and "MSFT" in held
                assert "TSLA" not in held and "NVDA" not in held
                page.screenshot(path=str(tmp_path / f"desk{query or '-ws'}.png"))
                page.close()
        finally:
            browser.close()


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn"])
def test_scaled_out_desk_two_browsers_on_two_workers(tmp_path: Path, chromium_path: str, server: str) -> None:
    """Two uvicorn workers on Redis (uvicorn's own, or gunicorn's with uvicorn's
    worker class): alice and bob, on different workers, each see their own live
    updates, and the page shows no console error."""
    import random
    import subprocess

    import redis
    from playwright.sync_api import sync_playwright

    need_redis()
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"  # a database of this test's own, most likely
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}",
        "TETHER_BROADCAST_URL": url,
        "TETHER_DATABASE_URL": f"sqlite:///{tmp_path}/desk.db",
        "TETHER_MARKET_INTERVAL": "0.3",
        "TETHER_REFRESH_INTERVALS": json.dumps({"balance": 0.3, "positions": 0.3, "pnl": 0.3, "orders": 0.5}),
    }
    argv = {
        "uvicorn": ["uvicorn", "--port", str(port), "--workers", "2"],
        "gunicorn": ["gunicorn", "-b", f"127.0.0.1:{port}", "-w", "2", "-k", "uvicorn.workers.UvicornWorker"],
    }[server]
    proc = subprocess.Popen(
        [sys.executable, "-m", *argv, "examples.trading.app:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
            try:
                pages: dict[str, object] = {}
                workers: dict[str, str] = {}
                errors: list[str] = []
                attempts = 0
                while len(pages) < 2 or len(set(workers.values())) < 2:
                    attempts += 1
                    assert attempts < 40, f"the desks all went to one worker: {workers}"
                    name = "alice" if "alice" not in pages or workers.get("bob") == workers.get("alice") else "bob"
                    if name in pages:
                        pages.pop(name).context.close()  # type: ignore[attr-defined]
                    page = browser.new_context().new_page()
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    page.on("pageerror", lambda e: errors.append(str(e)))
                    page.goto(f"http://127.0.0.1:{port}/")
                    page.fill("input[name=name]", name)
                    page.fill("input[name=password]", name)
                    page.click("#login")
                    page.wait_for_url("**/desk")
                    page.wait_for_function("document.getElementById('worker').textContent !== '…'", timeout=20_000)
                    pages[name] = page
                    workers[name] = page.text_content("#worker") or ""
                for name, page in pages.items():
                    first = page.text_content("#pnl")  # type: ignore[attr-defined]
                    page.wait_for_function(  # type: ignore[attr-defined]
                        f"document.getElementById('pnl').textContent !== {json.dumps(first)}", timeout=20_000
                    )
                    received = page.evaluate("window.received")  # type: ignore[attr-defined]
                    assert len({message["user"] for message in received}) == 1
                    held = page.text_content("#positions") or ""  # type: ignore[attr-defined]
                    mine, theirs = (("AAPL", "TSLA") if name == "alice" else ("TSLA", "AAPL"))
                    assert mine in held and theirs not in held
                    page.screenshot(path=str(tmp_path / f"desk-{name}.png"))  # type: ignore[attr-defined]
                assert errors == []
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
        client = redis.Redis.from_url(url)
        keys = client.keys("tether:*")
        if keys:
            client.delete(*keys)


def log_in(page: t.Any, port: int, name: str, password: str | None = None) -> None:
    page.goto(f"http://127.0.0.1:{port}/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password or name)
    page.click("#login")
    if password is None:
        page.wait_for_url("**/desk")


def order_from_ticket(page: t.Any, symbol: str, quantity: int, limit: str | None = None) -> str:
    """Place an order from the page's ticket; its id, once the page says it is placed."""
    page.select_option("#ticket select[name=type]", "limit" if limit else "market")
    page.select_option("#ticket select[name=symbol]", symbol)
    page.fill("#ticket input[name=quantity]", str(quantity))
    if limit:
        page.fill("#ticket input[name=limit_price]", limit)
    page.click("#submit")
    page.wait_for_function("document.getElementById('ticket-note').textContent.startsWith('#')", timeout=20_000)
    return (page.text_content("#ticket-note") or "").split(":")[0].lstrip("#")


def wait_for_row(page: t.Any, order_id: str, text: str) -> None:
    found = f"(document.querySelector(\"#orders tr[data-key='{order_id}']\") || {{}}).textContent?.includes('{text}')"
    page.wait_for_function(found, timeout=20_000)


def test_an_order_placed_in_one_tab_shows_in_every_tab_of_its_user_only(
    serve: Servers, tmp_path: Path, chromium_path: str
) -> None:
    """Alice has two tabs (WebSocket, and the SSE fallback), Bob one. Alice buys
    in one tab: both of hers show the order, the position and the cash; then she
    cancels a resting order from her other tab. Bob's tab sees none of it. And
    the login page's error is red (its stylesheet is whole)."""
    from playwright.sync_api import sync_playwright

    env = {
        "TETHER_DATABASE_URL": f"sqlite:///{tmp_path}/desk.db",
        "TETHER_MARKET_INTERVAL": "0.3",
        # The refreshers run once, at the start: an order reaches the tabs through the API's broadcast.
        "TETHER_REFRESH_INTERVALS": json.dumps(dict.fromkeys(["balance", "positions", "pnl", "orders"], 3600)),
    }
    argv = [sys.executable, "-m", "uvicorn", "examples.trading.app:app", "--port", "{port}", "--no-access-log"]
    port = serve(argv, cwd=ROOT, env=env)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=FLAGS)
        try:
            errors: list[str] = []
            alice_context, bob_context = browser.new_context(), browser.new_context()
            first, bob = alice_context.new_page(), bob_context.new_page()
            log_in(first, port, "alice", password="wrong")
            assert first.text_content(".error") == "Unknown name or wrong password."
            assert first.evaluate("getComputedStyle(document.querySelector('.error')).color") == "rgb(187, 0, 0)"
            log_in(first, port, "alice")
            second = alice_context.new_page()  # the same session: Alice's second tab
            second.goto(f"http://127.0.0.1:{port}/desk?sse")
            log_in(bob, port, "bob")
            pages = {"alice-ws": first, "alice-sse": second, "bob": bob}
            for page in pages.values():
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.wait_for_selector("#positions tr[data-key]", timeout=20_000)
                page.wait_for_selector(".tile[data-symbol=AMZN] polyline[points*=',']", timeout=20_000)
            assert first.text_content("#transport") == "WebSocket"
            assert second.text_content("#transport") == "server-sent events"
            cash = {name: page.text_content("#balance") for name, page in pages.items()}

            bought = order_from_ticket(first, "AMZN", 3)
            for tab in (first, second):
                wait_for_row(tab, bought, "filled")
                tab.wait_for_selector("#positions tr[data-key=AMZN]", timeout=20_000)
                tab.wait_for_function(
                    f"document.getElementById('balance').textContent !== {json.dumps(cash['alice-ws'])}", timeout=20_000
                )
                assert "market" in (tab.text_content(f"#orders tr[data-key='{bought}']") or "")
                assert (tab.text_content("#positions tr[data-key=AMZN] td:nth-child(2)") or "").strip() == "3"
            assert first.text_content("#balance") == second.text_content("#balance")
            resting = order_from_ticket(second, "GOOG", 2, limit="1.00")  # far below the price: it rests
            first.click(f"#orders button[data-cancel='{resting}']", timeout=20_000)  # cancelled from the other tab
            for tab in (first, second):
                wait_for_row(tab, resting, "cancelled")

            # Bob's tab goes on receiving (prices, every 0.3 s) and never gets Alice's orders.
            seen = bob.evaluate("window.received.length")
            bob.wait_for_function(f"window.received.length > {seen + 3}", timeout=20_000)
            assert len({message["user"] for message in bob.evaluate("window.received")}) == 1
            assert "AMZN" not in (bob.text_content("#positions") or "")
            assert bob.query_selector(f"#orders tr[data-key='{bought}']") is None
            assert bob.query_selector(f"#orders tr[data-key='{resting}']") is None
            assert bob.text_content("#balance") == cash["bob"]
            for name, page in pages.items():
                page.screenshot(path=str(tmp_path / f"desk-{name}.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
