"""Orders: what a valid one is, and how it is placed, filled and cancelled.

How an order fills, kept simple on purpose:

- A **market** order fills at once, whole, at the symbol's current price.
- A **limit** order fills the same way when it is placed if the price is
  already at or better than its limit (a buy at or below it, a sell at or
  above it). Otherwise it rests, ``open``, and the first market move whose
  price crosses the limit fills it, whole, at that move's price.
- No partial fills, fees, shorting or margin: a buy needs the cash and a sell
  the shares, net of what the user's open orders hold back (an open buy holds
  quantity × limit of cash, an open sell its shares).
- Only its owner can cancel an open order. A resting order that can no longer
  be paid for when it would fill (two orders placed at the same moment) is
  ``rejected``.

Each change is one transaction, and an order leaves ``open`` through one
conditional UPDATE (``WHERE status = 'open'``), so a fill and a cancel of the
same order cannot both happen.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .models import Balance, Order, Position, Quote

SIDES = ("buy", "sell")
TYPES = ("market", "limit")
FIELDS = ("symbol", "side", "type", "quantity", "limit_price")
MAX_QUANTITY = 1_000_000
MAX_PRICE = 1_000_000.0


class OrderError(Exception):
    """A refused order request: its message is for the user, its status for HTTP."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    type: str
    quantity: int
    limit_price: float | None


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """A time as the page reads it: ISO 8601 in UTC (SQLite gives back naive UTC times)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_order(body: object, symbols: t.Collection[str]) -> OrderRequest:
    """The order in a JSON body, or an ``OrderError`` saying what is wrong with it."""
    if not isinstance(body, dict):
        raise OrderError("The body must be a JSON object.")
    unknown = sorted(str(key) for key in body if key not in FIELDS)
    if unknown:
        raise OrderError(f"Unknown fields: {', '.join(unknown)}.")
    symbol, side, kind = body.get("symbol"), body.get("side"), body.get("type", "market")
    if not isinstance(symbol, str) or symbol not in symbols:
        raise OrderError(f"symbol: one of {', '.join(sorted(symbols))}.")
    if not isinstance(side, str) or side not in SIDES:
        raise OrderError("side: buy or sell.")
    if not isinstance(kind, str) or kind not in TYPES:
        raise OrderError("type: market or limit.")
    quantity = body.get("quantity")
    if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
        raise OrderError(f"quantity: a whole number from 1 to {MAX_QUANTITY}.")
    limit = body.get("limit_price")
    if kind == "market":
        if limit is not None:
            raise OrderError("limit_price: only for limit orders.")
        return OrderRequest(symbol, side, kind, quantity, None)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0.01 <= limit <= MAX_PRICE:  # NaN, inf too
        raise OrderError(f"limit_price: a price from 0.01 to {MAX_PRICE:.0f}, for a limit order.")
    return OrderRequest(symbol, side, kind, quantity, round(float(limit), 2))


def order_json(order: Order) -> dict[str, t.Any]:
    return {
        "id": order.id,
        "symbol": order.symbol,
        "side": order.side,
        "type": order.type,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "status": order.status,
        "fill_price": order.fill_price,
        "placed_at": iso(order.placed_at),
        "closed_at": iso(order.closed_at),
    }


def place(db: Session, user_id: int, request: OrderRequest) -> Order:
    """Record the order, and fill it at once if it can be; committed."""
    quote = db.get(Quote, request.symbol)
    if quote is None:
        raise OrderError(f"symbol: {request.symbol} is not traded.")
    _check_means(db, user_id, request, quote.price)
    order = Order(
        user_id=user_id, symbol=request.symbol, side=request.side, type=request.type,
        quantity=request.quantity, limit_price=request.limit_price, status="open", placed_at=now(),
    )
    db.add(order)
    db.flush()
    if crosses(order, quote.price):
        _fill(db, order, quote.price)
    db.commit()
    return order


def cancel(db: Session, user_id: int, order_id: int) -> Order:
    """Cancel the user's open order; committed. Another user's order is not found."""
    order = db.get(Order, order_id)
    if order is None or order.user_id != user_id:
        raise OrderError(f"You have no order {order_id}.", 404)
    done = db.execute(
        update(Order).where(Order.id == order_id, Order.status == "open").values(status="cancelled", closed_at=now())
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise OrderError(f"Order {order_id} is {order.status}: only an open order can be cancelled.", 409)
    db.refresh(order)
    db.commit()
    return order


def crosses(order: Order, price: float) -> bool:
    """Whether the order fills at this price."""
    if order.type == "market" or order.limit_price is None:
        return True
    return price <= order.limit_price if order.side == "buy" else price >= order.limit_price


def fill_resting(db: Session, prices: dict[str, float]) -> set[int]:
    """Fill the open orders these prices cross (not committed); the users whose orders filled."""
    users = set()
    for order in db.scalars(select(Order).where(Order.status == "open").order_by(Order.id)).all():
        price = prices.get(order.symbol)
        if price is not None and crosses(order, price):
            _fill(db, order, price)
            users.add(order.user_id)
    return users


def _check_means(db: Session, user_id: int, request: OrderRequest, price: float) -> None:
    """Refuse an order the user cannot pay for, net of what open orders hold back."""
    open_orders = (Order.user_id == user_id, Order.status == "open", Order.side == request.side)
    if request.side == "buy":
        balance = db.get(Balance, user_id)
        held = db.scalar(select(func.coalesce(func.sum(Order.quantity * Order.limit_price), 0.0)).where(*open_orders))
        available = round((balance.cash if balance else 0.0) - (held or 0.0), 2)
        needed = round(request.quantity * (request.limit_price or price), 2)
        if needed > available:
            raise OrderError(f"Not enough cash: {needed:,.2f} needed, {available:,.2f} available.")
        return
    position = _position(db, user_id, request.symbol)
    held = db.scalar(select(func.coalesce(func.sum(Order.quantity), 0)).where(*open_orders, Order.symbol == request.symbol))
    available_shares = (position.quantity if position else 0) - (held or 0)
    if request.quantity > available_shares:
        raise OrderError(f"Not enough {request.symbol} to sell: {request.quantity} asked, {available_shares} available.")


def _position(db: Session, user_id: int, symbol: str) -> Position | None:
    return db.scalar(select(Position).where(Position.user_id == user_id, Position.symbol == symbol))


def _fill(db: Session, order: Order, price: float) -> None:
    """Fill the order at ``price`` and move its cash and shares (not committed);
    nothing if it is no longer open, ``rejected`` if it can no longer be paid for."""
    done = db.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == "open")
        .values(status="filled", fill_price=price, closed_at=now())
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        return
    db.refresh(order)  # what the UPDATE wrote, including the columns a new order's INSERT left out
    balance = db.get(Balance, order.user_id, with_for_update=True)
    position = _position(db, order.user_id, order.symbol)
    amount = round(price * order.quantity, 2)
    held = position.quantity if position else 0
    if balance is None or (balance.cash < amount if order.side == "buy" else held < order.quantity):
        order.status, order.fill_price = "rejected", None
    elif order.side == "buy":
        balance.cash = round(balance.cash - amount, 2)
        if position is None:
            db.add(Position(user_id=order.user_id, symbol=order.symbol, quantity=order.quantity, cost=price))
        else:
            position.cost = (position.cost * position.quantity + amount) / (position.quantity + order.quantity)
            position.quantity += order.quantity
    elif position is not None:  # a sell of shares held
        balance.cash = round(balance.cash + amount, 2)
        position.quantity -= order.quantity
        if position.quantity == 0:
            db.delete(position)
