"""A chat over WebSockets, with a Server-Sent Events feed of the same messages.

    uvicorn examples.chat.app:app        (or: tether --app examples/chat/app.py run)

Every connected socket and feed has a bounded queue; a message is put on each
(a plain in-process fan-out: one worker process).
"""

from __future__ import annotations

import asyncio
import typing as t

from tether import EventStream, ServerSentEvent, Tether, render_template_string, websocket

app = Tether(__name__)
subscribers: set[asyncio.Queue[dict[str, str]]] = set()


def publish(message: dict[str, str]) -> None:
    """Put ``message`` on every subscriber's queue; a full queue drops its oldest."""
    for queue in list(subscribers):
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(message)


def subscribe() -> asyncio.Queue[dict[str, str]]:
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(maxsize=100)
    subscribers.add(queue)
    return queue


@app.websocket("/chat")
async def chat() -> None:
    name = websocket.args.get("name", "anonymous")
    await websocket.accept()
    queue = subscribe()

    async def forward() -> None:
        while True:
            await websocket.send_json(await queue.get())

    sender = asyncio.create_task(forward())
    publish({"from": "server", "text": f"{name} joined"})
    try:
        async for text in websocket:
            publish({"from": name, "text": str(text)})
    finally:
        sender.cancel()
        subscribers.discard(queue)
        publish({"from": "server", "text": f"{name} left"})


@app.route("/feed")
async def feed() -> EventStream:
    queue = subscribe()

    async def messages() -> t.AsyncIterator[ServerSentEvent]:
        try:
            while True:
                yield ServerSentEvent(await queue.get(), event="message")
        finally:
            subscribers.discard(queue)

    return EventStream(messages())


PAGE = """<!doctype html>
<title>tether chat</title>
<style>body{font:15px system-ui;max-width:50em;margin:2em auto;display:grid;grid-template-columns:1fr 1fr;gap:2em}</style>
<section><h2>Chat (WebSocket)</h2><div id="chat"></div>
<form id="say"><input name="text" autocomplete="off"><button>Send</button></form></section>
<section><h2>Feed (Server-Sent Events)</h2><div id="feed"></div></section>
<script>
const name = prompt("Your name?") || "guest";
const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/chat?name=${encodeURIComponent(name)}`);
const line = (id, m) => { const p = document.createElement("p"); p.textContent = `${m.from}: ${m.text}`; document.getElementById(id).append(p); };
ws.onmessage = (e) => line("chat", JSON.parse(e.data));
document.getElementById("say").onsubmit = (e) => { e.preventDefault(); ws.send(e.target.text.value); e.target.reset(); };
new EventSource("/feed").addEventListener("message", (e) => line("feed", JSON.parse(e.data)));
</script>
"""


@app.route("/")
def index() -> str:
    return render_template_string(PAGE)
