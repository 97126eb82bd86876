"""The trading desk's data: users, their cash, positions and orders, and the
market's quotes with a short price history per symbol. Amounts are in the
desk's one currency (``CURRENCY``, USD)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))


class Balance(Base):
    __tablename__ = "balances"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    cash: Mapped[float]


class Position(Base):
    """What a user holds of one symbol, at its average cost per share."""

    __tablename__ = "positions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(10))
    quantity: Mapped[int]
    cost: Mapped[float]


class Quote(Base):
    """A symbol's current price, which the market service moves."""

    __tablename__ = "quotes"
    symbol: Mapped[str] = mapped_column(String(10), primary_key=True)
    price: Mapped[float]


class PricePoint(Base):
    """One past price of a symbol: the last few are what a new tab's chart starts with."""

    __tablename__ = "price_points"
    id: Mapped[int] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(10), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    price: Mapped[float]


class Order(Base):
    """A user's order: ``open`` until it is ``filled`` (at ``fill_price``),
    ``cancelled`` by its owner, or ``rejected`` when it can no longer be paid for."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(10))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(6), default="market")
    quantity: Mapped[int]
    limit_price: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(10), index=True)
    fill_price: Mapped[float | None]
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
