"""Two apps in one process (seed 004): a frontend and a backend mounted at /backend."""

import os

from tether import DispatcherMiddleware, Tether, current_app, url_for, websocket

frontend = Tether("frontend")
backend = Tether("backend")
EVENTS = os.environ.get("EVENTS_FILE")


def record(line: str) -> None:
    if EVENTS:
        with open(EVENTS, "a") as f:
            f.write(line + "\n")


@frontend.route("/")
def home():
    return {"app": current_app.name, "self": url_for("home"), "path": "/"}


@backend.route("/")
def backend_home():
    return {"app": current_app.name, "self": url_for("backend_home"), "users": url_for("users")}


@backend.route("/users")
def users():
    return {"app": current_app.name, "users": ["ada", "grace"]}


@backend.websocket("/ws")
async def backend_ws():
    await websocket.send(f"{current_app.name} {url_for('backend_ws')}")


frontend.before_serving(lambda: record("frontend started"))
backend.before_serving(lambda: record("backend started"))
frontend.after_serving(lambda: record("frontend stopped"))
backend.after_serving(lambda: record("backend stopped"))

app = DispatcherMiddleware(frontend, {"/backend": backend})
