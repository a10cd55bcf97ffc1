"""SQLAlchemy models: the durable record of who called, who answered and what happened.

SQL is the source of truth for what happened; the queue backend holds what is
happening now and is rebuilt from these tables after a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import UTCDateTime

# Deterministic constraint names, so Alembic migrations match on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Read by SQLAlchemy at class creation, never mutated.
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}  # noqa: RUF012


class Customer(Base):
    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    age: Mapped[int] = mapped_column(Integer)
    preferred_dialect: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # When the customer opened their first account at the bank (tenure).
    customer_since: Mapped[datetime | None]


class Specialist(Base):
    __tablename__ = "specialists"

    specialist_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    # Staff role: "specialist" takes calls; "supervisor" only watches (wallboard,
    # timelines, audit) and is never registered for routing.
    role: Mapped[str] = mapped_column(String(16), default="specialist", server_default="specialist")

    dialects: Mapped[list[SpecialistDialect]] = relationship(
        back_populates="specialist", cascade="all, delete-orphan", lazy="selectin"
    )


class SpecialistDialect(Base):
    __tablename__ = "specialist_dialects"

    specialist_id: Mapped[str] = mapped_column(
        ForeignKey("specialists.specialist_id", ondelete="CASCADE"), primary_key=True
    )
    dialect: Mapped[str] = mapped_column(String(16), primary_key=True)
    proficiency: Mapped[int] = mapped_column(Integer)

    specialist: Mapped[Specialist] = relationship(back_populates="dialects")


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # At most one open call per customer, enforced by the database so that two
        # taps racing on two nodes still end up with one call.
        Index(
            "uq_calls_open_customer",
            "customer_id",
            unique=True,
            # Wrap-up is the specialist's time: a customer may open a new call then.
            sqlite_where=text("state NOT IN ('ended', 'wrap_up')"),
            postgresql_where=text("state NOT IN ('ended', 'wrap_up')"),
        ),
        Index("ix_calls_state", "state"),
    )

    call_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(String(16))
    dialect: Mapped[str | None] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(200))
    ticket: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    callback_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ladder_step: Mapped[str | None] = mapped_column(String(16))
    specialist_id: Mapped[str | None] = mapped_column(
        ForeignKey("specialists.specialist_id"), index=True
    )
    created_at: Mapped[datetime]
    enqueued_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    media_started_at: Mapped[datetime | None]
    conversation_ended_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    wrap_up_code: Mapped[str | None] = mapped_column(String(64))
    wrap_up_note: Mapped[str | None] = mapped_column(Text)
    predicted_wait_s: Mapped[float | None] = mapped_column(Float)
    actual_wait_s: Mapped[float | None] = mapped_column(Float)
    # The media session (signaling.session.MediaSession) as JSON, shared by all
    # nodes; media_version makes each change an optimistic compare-and-set.
    # Refreshed while the customer's app has a socket open; a waiting call whose
    # app has been gone too long was abandoned (never set: never abandoned).
    customer_seen_at: Mapped[datetime | None]
    media: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    media_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class CallEvent(Base):
    """One line of a call's timeline."""

    __tablename__ = "call_events"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(48))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
