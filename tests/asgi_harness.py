"""Driving an ASGI app directly, for what the test client hides on purpose:
disconnecting after N chunks, a slow consumer, a send that hangs, shutdown."""

from __future__ import annotations

import asyncio
import typing as t


def http_scope(path: str = "/", method: str = "GET", query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, t.Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 12345),
    }


class Exchange:
    """One HTTP exchange: body parts to deliver, what the app sent, and when the
    client leaves (after ``disconnect_after`` body chunks were received)."""

    def __init__(self, body_parts: list[bytes] | None = None, disconnect_after: int | None = None) -> None:
        self.body_parts = list(body_parts or [b""])
        self.disconnect_after = disconnect_after
        self.received_calls = 0
        self.sent: list[dict[str, t.Any]] = []
        self.gone = asyncio.Event()

    @property
    def chunks(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body" and m.get("body")]

    async def receive(self) -> dict[str, t.Any]:
        self.received_calls += 1
        if self.body_parts:
            part = self.body_parts.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(self.body_parts)}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, t.Any]) -> None:
        self.sent.append(message)
        if self.disconnect_after is not None and len(self.chunks) >= self.disconnect_after:
            self.gone.set()


def run(coro: t.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
    return asyncio.run(coro)


def exchange(app: t.Any, scope: dict[str, t.Any], body_parts: list[bytes]) -> list[dict[str, t.Any]]:
    """One whole HTTP exchange: what ``app`` sent. The client leaves once the
    response is complete, as a server reports it."""

    async def main() -> list[dict[str, t.Any]]:
        client = Exchange(body_parts)
        done = client.send

        async def send(message: dict[str, t.Any]) -> None:
            await done(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                client.gone.set()

        await asyncio.wait_for(app(scope, client.receive, send), 30)
        return client.sent

    return asyncio.run(main())
