"""The VM-jobs page's data: the jobs people started, and the VM accounts the
jobs create, save and load."""

from __future__ import annotations

import time

from sqlalchemy import Float, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"
    #: The Celery task's id.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(40), index=True)
    action: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10), default="queued")
    #: When it was started (seconds since the epoch): the page lists jobs in this order.
    created: Mapped[float] = mapped_column(Float, default=time.time, index=True)


class Account(Base):
    __tablename__ = "accounts"
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    node: Mapped[str | None] = mapped_column(String(60))
    app_type: Mapped[str | None] = mapped_column(String(60))
    device_id: Mapped[str | None] = mapped_column(String(60))
