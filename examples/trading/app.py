"""A small trading desk (seed 003, done right): place and cancel orders, watch
positions, P&L and prices move live, in every tab of the user, through tether's
browser client (``app.live``: a WebSocket, with an SSE fallback); a backend
app mounted at /backend.

    tether --app examples/trading/app.py run        (log in as alice/alice or bob/bob)

An order goes from the page's ticket to ``POST /api/orders`` (JSON in and out;
400 saying what is wrong; ``POST /api/orders/<id>/cancel`` to cancel one),
into the database, and out on the broadcast, on the user's channel
(``user:<id>``), to every tab of that user. How orders fill is in ``orders``.
The API wants the session's user, a JSON body (which a cross-site form cannot
send) and no foreign ``Origin``; the session cookie is ``SameSite=Lax``.

Each data type is refreshed by its own periodic service, at its own interval
(balance 10 s, positions 2 s, pnl 2 s, orders 15 s; ``REFRESH_INTERVALS``),
which publishes a user's data only when it changed. The market service moves
the prices every ``MARKET_INTERVAL`` seconds, fills the resting orders they
cross, and sends the new prices on every user's channel (prices are public,
but one channel per user keeps one connection per tab). Every run gets a fresh
app context, so a fresh database session, released at its teardown.

Scaled out (``uvicorn examples.trading.app:app --workers 4``, or
``gunicorn -w 4 -k uvicorn.workers.UvicornWorker examples.trading.app:app``,
with ``TETHER_BROADCAST_URL=redis://127.0.0.1:6379/0``), the market and the
refreshers run once per interval across all workers, and every browser gets
its user's updates whichever worker holds its connection. The page takes its
state from ``/live/state``, then joins its channel from that state's last id;
the client resumes from the last id it saw when it reconnects, over the
WebSocket or over SSE (``?sse`` in the address), and a ``gap`` (more missed
than the history holds) reloads the state. A channel rule lets a user follow
their own channel only.
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
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from tether import (
    BroadcastUnavailable,
    DispatcherMiddleware,
    Tether,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from .data import HISTORY, close_db, get_db, make_sessionmaker, move_market, seed, snapshot, symbols
from .models import Balance, User
from .orders import OrderError, cancel, order_json, parse_order, place

#: What the refreshers keep up to date, each on its own interval.
KINDS = ("balance", "positions", "pnl", "orders")


def create_app(test_config: dict[str, t.Any] | None = None) -> DispatcherMiddleware:
    frontend = Tether(__name__)
    frontend.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev"),
        SESSION_COOKIE_SAMESITE="Lax",
        DATABASE_URL=f"sqlite:///{Path(frontend.instance_path) / 'desk.db'}",
        REFRESH_INTERVALS={"balance": 10, "positions": 2, "pnl": 2, "orders": 15},
        MARKET_INTERVAL=2,
        MARKET_SEED=None,
        CURRENCY="USD",
        # Its channels and cluster-wide turns on a Redis shared with other apps.
        BROADCAST_NAMESPACE="trading-desk",
    )
    frontend.config.from_prefixed_env()
    if test_config:
        frontend.config.update(test_config)
    if frontend.config["DATABASE_URL"].startswith("sqlite:///"):
        Path(frontend.config["DATABASE_URL"][len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    frontend.extensions["trading.sessions"] = make_sessionmaker(frontend.config["DATABASE_URL"])
    frontend.extensions["trading.last_sent"] = {}
    frontend.teardown_appcontext(close_db)

    @frontend.before_serving
    def prepare() -> None:
        seed(get_db())

    @frontend.cli.command("init-db")
    def init_db() -> None:
        """Create and seed the database."""
        seed(get_db())

    add_services(frontend)
    add_pages(frontend)
    add_live(frontend)
    add_order_api(frontend)
    return DispatcherMiddleware(frontend, {"/backend": create_backend(frontend)})


def publish(app: Tether, db: Session, user_id: int, kinds: t.Iterable[str], only_changed: bool = False) -> None:
    """Send these kinds of the user's data on their channel, to every tab they have
    open. What the broadcast cannot take now (Redis down) a refresher sends later:
    an order placed is not an error because its news is late."""
    last_sent: dict[tuple[int, str], t.Any] = app.extensions["trading.last_sent"]
    for kind in kinds:
        value = snapshot(db, user_id, kind)
        if only_changed and last_sent.get((user_id, kind)) == value:
            continue
        try:
            app.broadcast.publish(f"user:{user_id}", {"user": user_id, "kind": kind, "data": value})
        except BroadcastUnavailable as e:
            app.logger.warning("The %s of user %s were not sent (%s); a refresher sends them later.", kind, user_id, e)
            last_sent.pop((user_id, kind), None)
        else:
            last_sent[(user_id, kind)] = value


def add_services(app: Tether) -> None:
    """The market, and one refresher per kind of data."""
    rng = random.Random(app.config["MARKET_SEED"])
    # On Redis, each service runs once per interval across all workers; alone, in this one.
    across: t.Literal["worker", "cluster"] = "cluster" if app.config["BROADCAST_URL"].startswith("redis") else "worker"

    @app.periodic(app.config["MARKET_INTERVAL"], name="market", across=across)
    def market() -> None:
        db = get_db()
        points, filled = move_market(db, rng)
        for user_id in db.scalars(select(User.id)):
            app.broadcast.publish(f"user:{user_id}", {"user": user_id, "kind": "prices", "data": points})
        for user_id in filled:
            publish(app, db, user_id, KINDS)

    def refresher(kind: str) -> t.Callable[[], None]:
        def refresh() -> None:
            db = get_db()
            for user_id in db.scalars(select(User.id)):
                publish(app, db, user_id, (kind,), only_changed=True)

        refresh.__name__ = f"refresh_{kind}"
        return refresh

    for kind in KINDS:
        app.periodic(app.config["REFRESH_INTERVALS"][kind], name=f"refresh {kind}", across=across)(refresher(kind))


def add_pages(app: Tether) -> None:
    @app.route("/", methods=["GET", "POST"])
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

    @app.route("/logout")
    def logout() -> t.Any:
        session.clear()
        return redirect(url_for("login"))

    @app.route("/desk")
    def desk() -> t.Any:
        if "user_id" not in session:
            return redirect(url_for("login"))
        return render_template(
            "desk.html", name=session["name"], symbols=symbols(get_db()),
            currency=app.config["CURRENCY"], history=HISTORY,
        )


def initial(user_id: int) -> list[dict[str, t.Any]]:
    """Everything a new tab shows before its updates."""
    db = get_db()
    return [{"user": user_id, "kind": kind, "data": snapshot(db, user_id, kind)} for kind in (*KINDS, "prices")]


def current_user_id() -> int:
    user_id = session.get("user_id")
    if user_id is None:
        abort(401)
    return int(user_id)


def add_live(app: Tether) -> None:
    """The live endpoint (``/live/ws``, its SSE fallback ``/live/events`` and
    the browser client), a rule that gives each user their own channel only,
    and the state a tab shows before its updates."""
    app.live("/live")

    @app.channel("user:<int:user_id>")
    def own_channel(user_id: int) -> bool:
        return session.get("user_id") == user_id

    @app.route("/live/state")
    def live_state() -> dict[str, t.Any]:
        """The user's data now, and the id of their channel's newest message
        (read first): the page joins from it, so it misses nothing published
        after this state was read."""
        user_id = current_user_id()
        channel = f"user:{user_id}"
        last_id = app.broadcast.last_id(channel) or "0-0"
        return {"worker": os.getpid(), "channel": channel, "last_id": last_id, "messages": initial(user_id)}


def api_user() -> int:
    """The session's user, for a same-origin JSON request; else an ``OrderError``."""
    if "user_id" not in session:
        raise OrderError("Log in first.", 401)
    origin = request.headers.get("Origin")
    if origin is not None and origin != request.host_url.rstrip("/"):
        raise OrderError("Requests from other sites are refused.", 403)
    if not request.is_json:
        raise OrderError("Send JSON (Content-Type: application/json).", 415)
    return int(session["user_id"])


def add_order_api(app: Tether) -> None:
    @app.errorhandler(OrderError)
    def refused(error: OrderError) -> tuple[dict[str, str], int]:
        return {"error": error.message}, error.status

    @app.post("/api/orders")
    def place_order() -> tuple[dict[str, t.Any], int]:
        """Place an order: filled at once or resting, then sent to every tab of the user."""
        user_id = api_user()
        db = get_db()
        order = place(db, user_id, parse_order(request.get_json(silent=True), symbols(db)))
        publish(app, db, user_id, KINDS)
        return {"order": order_json(order)}, 201

    @app.post("/api/orders/<int:order_id>/cancel")
    def cancel_order(order_id: int) -> dict[str, t.Any]:
        """Cancel one of the user's open orders."""
        user_id = api_user()
        db = get_db()
        order = cancel(db, user_id, order_id)
        publish(app, db, user_id, ("orders",))
        return {"order": order_json(order)}


def create_backend(frontend: Tether) -> Tether:
    """The backend, mounted at /backend: it reads the frontend's signed session
    cookie (same secret, same session interface) and shows a user their own data only."""
    backend = Tether("trading_backend")
    backend.config.update(
        SECRET_KEY=frontend.config["SECRET_KEY"], SESSION_COOKIE_NAME=frontend.config["SESSION_COOKIE_NAME"]
    )
    backend.session_interface = frontend.session_interface
    backend.extensions["trading.sessions"] = frontend.extensions["trading.sessions"]
    backend.teardown_appcontext(close_db)

    @backend.route("/users")
    def users() -> tuple[dict[str, t.Any], int]:
        user_id = session.get("user_id")
        if user_id is None:
            return {"error": "Log in first."}, 401
        rows = get_db().execute(
            select(User.name, Balance.cash).join(Balance, Balance.user_id == User.id).where(User.id == int(user_id))
        )
        return {"app": "backend", "users": [{"name": name, "cash": round(cash, 2)} for name, cash in rows]}, 200

    return backend


app = create_app()
