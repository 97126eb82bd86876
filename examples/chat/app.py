"""A chat on tether's rooms: sign in with a name, join and leave rooms, see who
is here, and read what was said before you came.

    tether --app examples/chat/app.py run                  (one process, memory://)
    TETHER_BROADCAST_URL=redis://127.0.0.1:6379/0 uvicorn examples.chat.app:app --workers 4

Each room is a broadcast channel, ``room:<name>``: a message is ``POST``ed to
``/api/rooms/<name>/messages`` and published there (event ``chat``); the page
follows its rooms with the browser client of ``app.live("/live")``, joining
each from ``"0-0"``, so the room's history (the last ``BROADCAST_HISTORY``
messages) comes first, then what is said live. Who is in a room is
``app.presence``, kept by the live endpoint itself (``presence=present_as``):
a tab that joins ``here:<name>`` (live only) over the same connection is in
the room until it leaves it or closes; the ``joined`` reply lists who is
there, and join and leave events follow. A person with three tabs open is
there once. Presence has a channel of its own so that a room's history holds
what was said, not who came and went.

Who may follow what is the channel rules': a room is open to anyone signed in,
except the private ones (``CHAT_PRIVATE_ROOMS``, name -> members), and
``user:<name>``, where a person hears of their @mentions in any room, is for
that person alone.

Messages come from outside the web process too: ``python -m
examples.chat.announce <room> <text>`` (a plain script, ``Broadcast(url,
namespace=...)``) and the Celery task ``chat.remind`` (``/remind <seconds>
<text>`` in a room; ``tether --app examples/chat/app.py celery worker`` runs
it). Settings come from the environment (``TETHER_`` + the name):
``BROADCAST_URL``, ``BROADCAST_NAMESPACE`` (``chat-example``), ``SECRET_KEY``,
``CHAT_ROOMS`` and ``CHAT_PRIVATE_ROOMS`` (JSON), ``CHAT_BROKER_URL``
(by default the broadcast's Redis; on ``memory://`` the task runs at once, in the web
process).
"""

from __future__ import annotations

import os
import re
import sys
import typing as t
from pathlib import Path

if __package__ in (None, ""):  # run as a file (tether --app examples/chat/app.py)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "examples.chat"

from tether import Tether, abort, current_app, redirect, render_template, request, session, url_for
from tether.celery import init_celery
from tether.live.channels import LIVE_ONLY, Access

from .messages import say

#: A person's name and a room's name: what fits in a channel name and a URL.
NAME = re.compile(r"[A-Za-z0-9_-]{1,24}")
ROOM = re.compile(r"[a-z0-9-]{1,32}")
#: The longest message taken, in characters.
MAX_TEXT = 2000

# root_path: templates/ and static/ next to this file, however it was imported.
app = Tether(__name__, root_path=str(Path(__file__).resolve().parent))
app.config.from_mapping(
    SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
    SESSION_COOKIE_SAMESITE="Lax",
    # The web workers, the announce script and the Celery worker agree on it,
    # however each imports this file; other apps on the same Redis never hear it.
    BROADCAST_NAMESPACE="chat-example",
    # What a room shows to whoever joins it.
    BROADCAST_HISTORY=200,
    CHAT_ROOMS=["lobby", "random", "help"],
    CHAT_PRIVATE_ROOMS={"staff": ["alice", "bob"]},
    CHAT_BROKER_URL=None,
)
app.config.from_prefixed_env()


def _celery_config() -> dict[str, t.Any]:
    """Celery on the broadcast's Redis (or ``CHAT_BROKER_URL``); on
    ``memory://`` alone, the task runs at once in the web process."""
    broker = app.config["CHAT_BROKER_URL"]
    if broker is None and app.config["BROADCAST_URL"].startswith(("redis://", "rediss://")):
        broker = app.config["BROADCAST_URL"]
    if broker is None:
        return {"broker_url": "memory://", "task_always_eager": True}  # no worker shares memory://
    # A queue of its own, named as its namespace: not "celery", which any other project's worker on
    # this Redis takes from.
    return {"broker_url": broker, "task_ignore_result": True, "task_default_queue": app.config["BROADCAST_NAMESPACE"]}


app.config.setdefault("CELERY", _celery_config())
celery = init_celery(app)


# Who may follow what: asked in the client's own request or WebSocket context.


def user() -> str | None:
    name = session.get("user")
    return name if isinstance(name, str) else None


def may_enter(room: str) -> bool:
    """Whether the signed-in person may read and write in ``room``."""
    name = user()
    if name is None or not ROOM.fullmatch(room):
        return False
    members = current_app.config["CHAT_PRIVATE_ROOMS"].get(room)
    return members is None or name in members


@app.channel("room:<name>")
def room_channel(name: str) -> bool:
    return may_enter(name)


@app.channel("here:<name>")
def here_channel(name: str) -> Access | bool:
    """Presence events: from now on only (an old join is no news)."""
    return LIVE_ONLY if may_enter(name) else False


@app.channel("user:<name>")
def user_channel(name: str) -> bool:
    return user() == name


def present_as(channel: str) -> tuple[str, dict[str, str]] | None:
    """Who a connection is in the channel it joined (the rules allowed it):
    the signed-in person, in a room's presence channel only."""
    name = user()
    if name is None or not channel.startswith("here:"):
        return None
    return name, {"name": name}


app.live("/live", presence=present_as)


# Pages.


@app.route("/", methods=["GET", "POST"])
def index() -> t.Any:
    error = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        if NAME.fullmatch(name):
            session.clear()
            session["user"] = name
            return redirect(url_for("index"))
        error = "A name is 1 to 24 letters, digits, - or _."
    if user() is None:
        return render_template("signin.html", error=error)
    return render_template("chat.html", user=user(), rooms=rooms_of(t.cast(str, user())))


@app.post("/signout")
def signout() -> t.Any:
    session.clear()
    return redirect(url_for("index"))


def rooms_of(name: str) -> list[dict[str, t.Any]]:
    """The rooms offered to ``name``: the public ones and their private ones."""
    public = [{"name": room, "private": False} for room in current_app.config["CHAT_ROOMS"]]
    private = [
        {"name": room, "private": True}
        for room, members in current_app.config["CHAT_PRIVATE_ROOMS"].items()
        if name in members
    ]
    return public + private


# The JSON API.


def member_of(room: str) -> str:
    """The signed-in person, who may enter ``room``; else a 401 or 403."""
    name = user()
    if name is None:
        abort(401, description="Sign in first.")
    if not may_enter(room):
        abort(403, description=f"You may not enter {room!r}.")
    return name


@app.post("/api/rooms/<room>/messages")
def post_message(room: str) -> tuple[dict[str, t.Any], int]:
    """Say something in ``room``; ``/remind <seconds> <text>`` asks the Celery
    task to say it there later."""
    name = member_of(room)
    body = request.get_json(silent=True)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        abort(400, description=f"Send {{'text': ...}}, 1 to {MAX_TEXT} characters.")
    command = re.fullmatch(r"/remind\s+(\d{1,5})\s+(.+)", text.strip(), re.S)
    if command:
        remind.apply_async((room, name, command[2]), countdown=int(command[1]))
        return {"reminder": int(command[1])}, 202
    return {"id": say(current_app.broadcast, room, name, text.strip())}, 201


@app.get("/api/rooms/<room>/members")
async def members(room: str) -> dict[str, t.Any]:
    """Who is in ``room`` now, each once however many tabs they have open."""
    member_of(room)
    here = await current_app.presence.amembers(f"here:{room}")
    return {"room": room, "members": sorted(meta["name"] for meta in here.values())}


@app.errorhandler(400)
@app.errorhandler(401)
@app.errorhandler(403)
def api_error(error: t.Any) -> t.Any:
    if not request.path.startswith("/api/"):
        return error
    return {"error": error.description}, error.code


# From outside the web process: a Celery task.


@celery.task(name="chat.remind")
def remind(room: str, author: str, text: str) -> str:
    """Say ``text`` in ``room`` as a reminder ``author`` asked for; the message's id."""
    return say(current_app.broadcast, room, "reminder", f"@{author}: {text}", kind="bot")
