"""Reading the desk's data per user, and a market that moves it.

A database session lives as long as one app context (``get_db``), and is
removed at its teardown: each request, and each run of a periodic service,
gets a fresh one, as seed 003's fix insists.

The market is one price per symbol (``Quote``), public, with its last
``HISTORY`` prices kept (``PricePoint``) so that a new tab's charts start with
some points. Each move walks every price, records it, and fills the resting
orders it crosses (see ``orders``).
"""

from __future__ import annotations

import random
import typing as t
from datetime import timedelta

from sqlalchemy import create_engine, delete, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import generate_password_hash

from tether import current_app, g

from .models import Balance, Base, Order, Position, PricePoint, Quote, User
from .orders import fill_resting, iso, now, order_json

#: The market's symbols and their first prices.
QUOTES = {"AAPL": 187.0, "AMZN": 178.0, "GOOG": 152.0, "MSFT": 415.0, "NVDA": 880.0, "TSLA": 245.0}
SEED: dict[str, dict[str, t.Any]] = {
    "alice": {"cash": 10_000.0, "positions": [("AAPL", 10, 150.0), ("MSFT", 5, 300.0)]},
    "bob": {"cash": 25_000.0, "positions": [("TSLA", 20, 260.0), ("NVDA", 8, 700.0)]},
}
#: How many past prices each symbol keeps.
HISTORY = 60
#: How many of them the seed makes up, so that the first page has a chart.
SEEDED_HISTORY = 30
#: How many closed orders a user sees, besides every open one.
CLOSED_ORDERS = 20


def make_sessionmaker(url: str) -> sessionmaker[Session]:
    engine = create_engine(url, connect_args={"check_same_thread": False} if url.startswith("sqlite") else {})
    try:
        Base.metadata.create_all(engine)
    except OperationalError:  # another worker created the tables at the same moment
        Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def get_db() -> Session:
    """The database session of the current app context."""
    if "db" not in g:
        g.db = current_app.extensions["trading.sessions"]()
    return t.cast(Session, g.db)


def close_db(exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        if exc is not None:
            db.rollback()
        db.close()


def seed(db: Session) -> None:
    """Create the market and the two users, once: several workers may try at the same moment."""
    try:
        _seed(db)
    except (IntegrityError, OperationalError):
        db.rollback()  # another worker seeded it


def _seed(db: Session) -> None:
    if db.scalar(select(User).limit(1)) is not None:
        return
    start = now()
    for symbol, price in QUOTES.items():
        db.add(Quote(symbol=symbol, price=price))
        walk = random.Random(symbol)  # the same made-up past on every run
        points = [price]
        for _ in range(SEEDED_HISTORY - 1):
            points.append(round(points[-1] * (1 + walk.uniform(-0.01, 0.01)), 2))
        for age, past in reversed(list(enumerate(points))):  # oldest first: ids follow time
            db.add(PricePoint(symbol=symbol, at=start - timedelta(seconds=2 * age), price=past))
    for name, data in SEED.items():
        user = User(name=name, password_hash=generate_password_hash(name))
        db.add(user)
        db.flush()
        db.add(Balance(user_id=user.id, cash=data["cash"]))
        for symbol, quantity, cost in data["positions"]:
            db.add(Position(user_id=user.id, symbol=symbol, quantity=quantity, cost=cost))
            bought = start - timedelta(hours=1)
            db.add(Order(
                user_id=user.id, symbol=symbol, side="buy", type="market", quantity=quantity,
                status="filled", fill_price=cost, placed_at=bought, closed_at=bought,
            ))
    db.commit()


def symbols(db: Session) -> list[str]:
    return list(db.scalars(select(Quote.symbol).order_by(Quote.symbol)))


def price_history(db: Session) -> dict[str, list[tuple[str | None, float]]]:
    """Each symbol's last prices, oldest first, as ``(time, price)`` pairs."""
    history: dict[str, list[tuple[str | None, float]]] = {symbol: [] for symbol in symbols(db)}
    for point in db.scalars(select(PricePoint).order_by(PricePoint.id)):
        history.setdefault(point.symbol, []).append((iso(point.at), point.price))
    return history


def snapshot(db: Session, user_id: int, kind: str) -> t.Any:
    """One kind of the user's data, as sent to the browser."""
    if kind == "balance":
        return round(db.get(Balance, user_id).cash, 2)  # type: ignore[union-attr]
    if kind == "positions":
        return [_position_json(p, price) for p, price in _positions(db, user_id)]
    if kind == "pnl":
        return round(sum((price - p.cost) * p.quantity for p, price in _positions(db, user_id)), 2)
    if kind == "orders":
        mine = (Order.user_id == user_id,)
        open_orders = db.scalars(select(Order).where(*mine, Order.status == "open"))
        closed = db.scalars(select(Order).where(*mine, Order.status != "open").order_by(Order.id.desc()).limit(CLOSED_ORDERS))
        return [order_json(o) for o in sorted([*open_orders, *closed], key=lambda o: o.id, reverse=True)]
    if kind == "prices":
        return price_history(db)
    raise ValueError(kind)


def _positions(db: Session, user_id: int) -> list[tuple[Position, float]]:
    rows = db.execute(
        select(Position, Quote.price)
        .join(Quote, Quote.symbol == Position.symbol)
        .where(Position.user_id == user_id)
        .order_by(Position.symbol)
    )
    return [(position, price) for position, price in rows]


def _position_json(position: Position, price: float) -> dict[str, t.Any]:
    return {
        "symbol": position.symbol,
        "quantity": position.quantity,
        "avg_cost": round(position.cost, 2),
        "price": round(price, 2),
        "market_value": round(price * position.quantity, 2),
        "unrealized": round((price - position.cost) * position.quantity, 2),
    }


def move_market(db: Session, rng: random.Random) -> tuple[dict[str, list[tuple[str | None, float]]], set[int]]:
    """Walk every price, keep it in the history, fill the orders it crosses;
    committed. The new points per symbol, and the users whose orders filled."""
    moment = now()
    prices: dict[str, float] = {}
    for quote in db.scalars(select(Quote).order_by(Quote.symbol)):
        quote.price = round(max(1.0, quote.price * (1 + rng.uniform(-0.01, 0.01))), 2)
        prices[quote.symbol] = quote.price
        db.add(PricePoint(symbol=quote.symbol, at=moment, price=quote.price))
        db.flush()
        oldest_kept = db.scalar(
            select(PricePoint.id).where(PricePoint.symbol == quote.symbol)
            .order_by(PricePoint.id.desc()).offset(HISTORY - 1).limit(1)
        )
        if oldest_kept is not None:
            db.execute(delete(PricePoint).where(PricePoint.symbol == quote.symbol, PricePoint.id < oldest_kept))
    filled = fill_resting(db, prices)
    db.commit()
    return {symbol: [(iso(moment), price)] for symbol, price in prices.items()}, filled
