"""Reading the desk's data per user, and a market that moves it.

A database session lives as long as one app context (``get_db``), and is
removed at its teardown: each request, and each run of a periodic service,
gets a fresh one, as seed 003's fix insists.
"""

from __future__ import annotations

import random
import typing as t

from sqlalchemy import create_engine, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import generate_password_hash

from tether import current_app, g

from .models import Balance, Base, Order, Position, User

SEED = {
    "alice": {"cash": 10_000.0, "positions": [("AAPL", 10, 150.0), ("MSFT", 5, 300.0)]},
    "bob": {"cash": 25_000.0, "positions": [("TSLA", 20, 200.0), ("NVDA", 8, 400.0)]},
}


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
    """Create the two users, once: several workers may try at the same moment."""
    try:
        _seed(db)
    except (IntegrityError, OperationalError):
        db.rollback()  # another worker seeded it


def _seed(db: Session) -> None:
    if db.scalar(select(User).limit(1)) is not None:
        return
    for name, data in SEED.items():
        user = User(name=name, password_hash=generate_password_hash(name))
        db.add(user)
        db.flush()
        db.add(Balance(user_id=user.id, cash=data["cash"]))
        for symbol, quantity, cost in data["positions"]:
            db.add(Position(user_id=user.id, symbol=symbol, quantity=quantity, cost=cost, price=cost))
            db.add(Order(user_id=user.id, symbol=symbol, side="buy", quantity=quantity, status="filled"))
    db.commit()


def snapshot(db: Session, user_id: int, kind: str) -> t.Any:
    """One kind of the user's data, as sent to the browser."""
    if kind == "balance":
        return round(db.get(Balance, user_id).cash, 2)  # type: ignore[union-attr]
    if kind == "positions":
        rows = db.scalars(select(Position).where(Position.user_id == user_id).order_by(Position.symbol))
        return [{"symbol": p.symbol, "quantity": p.quantity, "price": round(p.price, 2)} for p in rows]
    if kind == "pnl":
        rows = db.scalars(select(Position).where(Position.user_id == user_id))
        return round(sum((p.price - p.cost) * p.quantity for p in rows), 2)
    if kind == "orders":
        rows = db.scalars(select(Order).where(Order.user_id == user_id).order_by(Order.id.desc()).limit(5))
        return [{"id": o.id, "symbol": o.symbol, "side": o.side, "quantity": o.quantity, "status": o.status} for o in rows]
    raise ValueError(kind)


def move_market(db: Session, rng: random.Random) -> None:
    """Prices walk, cash changes now and then, orders get placed and filled."""
    for position in db.scalars(select(Position)):
        position.price = max(1.0, position.price * (1 + rng.uniform(-0.01, 0.01)))
    for balance in db.scalars(select(Balance)):
        if rng.random() < 0.5:
            balance.cash = round(balance.cash + rng.uniform(-50, 50), 2)
    for order in db.scalars(select(Order).where(Order.status == "open")):
        order.status = "filled"
    for user_id, symbol in db.execute(select(Position.user_id, Position.symbol)):
        if rng.random() < 0.2:
            db.add(Order(user_id=user_id, symbol=symbol, side=rng.choice(["buy", "sell"]), quantity=rng.randint(1, 5), status="open"))
    db.commit()
