"""A small trading desk (seed 003, done right): live per-user updates pushed
from periodic services over WebSockets, with an SSE fallback, and a backend app
mounted at /backend.

    tether --app examples/trading/app.py run        (log in as alice/alice or bob/bob)

Each data type is refreshed by its own periodic service, at its own interval
(balance 10 s, positions 5 s, pnl 5 s, orders 15 s; ``REFRESH_INTERVALS``).
Every run gets a fresh app context, so a fresh database session, released at
its teardown; it publishes a user's data only when it changed, on that user's
channel, so a browser receives its own user's updates and nobody else's.

Scaled out (``uvicorn examples.trading.app:app --workers 4``, or
``gunicorn -w 4 -k uvicorn.workers.UvicornWorker examples.trading.app:app``,
with ``TETHER_BROADCAST_URL=redis://127.0.0.1:6379/0``), the market and the
refreshers run once per interval across all workers, and every browser gets
its user's updates whichever worker holds its connection. The SSE page resumes
from ``Last-Event-ID`` when it reconnects.
"""

from __future__ import annotations

import os
import random
import sys
import typing as t
from pathlib import Path

if __package__ in (None, ""):  # run as a file (tether --app examples/trading/app.py)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "examples.trading"

from sqlalchemy import select
from werkzeug.security import check_password_hash

from tether import (
    DispatcherMiddleware,
    EventStream,
    Tether,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
    websocket,
)

from .data import close_db, get_db, make_sessionmaker, move_market, seed, snapshot
from .models import Balance, User

KINDS = ("balance", "positions", "pnl", "orders")


def create_app(test_config: dict[str, t.Any] | None = None) -> DispatcherMiddleware:
    frontend = Tether(__name__)
    frontend.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
        DATABASE_URL=f"sqlite:///{Path(frontend.instance_path) / 'trading.db'}",
        REFRESH_INTERVALS={"balance": 10, "positions": 5, "pnl": 5, "orders": 15},
        MARKET_INTERVAL=2,
        MARKET_SEED=None,
        # Its channels and cluster-wide turns on a Redis shared with other apps.
        BROADCAST_NAMESPACE="trading-desk",
    )
    frontend.config.from_prefixed_env()
    if test_config:
        frontend.config.update(test_config)
    if frontend.config["DATABASE_URL"].startswith("sqlite:///"):
        Path(frontend.config["DATABASE_URL"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    frontend.extensions["trading.sessions"] = make_sessionmaker(frontend.config["DATABASE_URL"])
    frontend.teardown_appcontext(close_db)

    @frontend.before_serving
    def prepare() -> None:
        seed(get_db())

    @frontend.cli.command("init-db")
    def init_db() -> None:
        """Create and seed the database."""
        seed(get_db())

    rng = random.Random(frontend.config["MARKET_SEED"])
    # On Redis, each service runs once per interval across all workers; alone, in this one.
    across: t.Literal["worker", "cluster"] = (
        "cluster" if frontend.config["BROADCAST_URL"].startswith("redis") else "worker"
    )

    @frontend.periodic(frontend.config["MARKET_INTERVAL"], name="market", across=across)
    def market() -> None:
        move_market(get_db(), rng)

    last_sent: dict[tuple[int, str], t.Any] = {}

    def refresher(kind: str) -> t.Callable[[], None]:
        def refresh() -> None:
            db = get_db()
            for user_id in db.scalars(select(User.id)):
                value = snapshot(db, user_id, kind)
                if last_sent.get((user_id, kind)) != value:
                    last_sent[(user_id, kind)] = value
                    frontend.broadcast.publish(f"user:{user_id}", {"user": user_id, "kind": kind, "data": value})

        refresh.__name__ = f"refresh_{kind}"
        return refresh

    for kind in KINDS:
        frontend.periodic(frontend.config["REFRESH_INTERVALS"][kind], name=f"refresh {kind}", across=across)(
            refresher(kind)
        )

    def current_user_id() -> int:
        user_id = session.get("user_id")
        if user_id is None:
            abort(401)
        return int(user_id)

    def initial(user_id: int) -> list[dict[str, t.Any]]:
        db = get_db()
        return [{"user": user_id, "kind": kind, "data": snapshot(db, user_id, kind)} for kind in KINDS]

    @frontend.route("/", methods=["GET", "POST"])
    def login() -> t.Any:
        error = None
        if request.method == "POST":
            user = get_db().scalar(select(User).where(User.name == request.form.get("name", "")))
            if user is not None and check_password_hash(user.password_hash, request.form.get("password", "")):
                session.clear()
                session["user_id"] = user.id
                session["name"] = user.name
                return redirect(url_for("desk"))
            error = "Unknown name or wrong password."
        return render_template("login.html", error=error)

    @frontend.route("/logout")
    def logout() -> t.Any:
        session.clear()
        return redirect(url_for("login"))

    @frontend.route("/desk")
    def desk() -> t.Any:
        if "user_id" not in session:
            return redirect(url_for("login"))
        return render_template("desk.html", name=session["name"])

    @frontend.websocket("/live")
    async def live() -> t.Any:
        if "user_id" not in session:
            return "log in first", 401
        user_id = int(session["user_id"])
        updates = frontend.broadcast.subscribe(f"user:{user_id}")
        await websocket.accept()
        await websocket.send_json({"user": user_id, "kind": "hello", "worker": os.getpid()})
        for message in initial(user_id):
            await websocket.send_json(message)
        await websocket.relay(updates)
        return None

    @frontend.route("/live/state")
    def live_state() -> dict[str, t.Any]:
        """The user's data now, which the SSE page shows before its updates."""
        user_id = current_user_id()
        return {"worker": os.getpid(), "messages": initial(user_id)}

    @frontend.route("/live/events")
    def live_events() -> EventStream:
        """The user's updates; a reconnecting EventSource resumes from Last-Event-ID."""
        channel = f"user:{current_user_id()}"
        return EventStream(frontend.broadcast.subscribe(channel, last_id=request.last_event_id))

    backend = Tether("trading_backend")
    backend.extensions["trading.sessions"] = frontend.extensions["trading.sessions"]
    backend.teardown_appcontext(close_db)

    @backend.route("/users")
    def users() -> dict[str, t.Any]:
        db = get_db()
        rows = db.execute(select(User.name, Balance.cash).join(Balance, Balance.user_id == User.id).order_by(User.name))
        return {"app": "backend", "users": [{"name": name, "cash": round(cash, 2)} for name, cash in rows]}

    return DispatcherMiddleware(frontend, {"/backend": backend})


app = create_app()
