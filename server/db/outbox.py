"""The outbox: domain events written in the transaction of the change they report.

A row per event (``outbox``) and a row per handler that has handled it
(``outbox_deliveries``). The relay (server/outbox/relay.py) delivers each pending
event to every handler that has no delivery row for it yet, and marks the event
delivered once all have. Ids increase with insertion, which gives the order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base


class OutboxEvent(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "delivered_at", "id"),
        Index("ix_outbox_call_id", "call_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    # Events of one call are delivered in id order, handler by handler.
    call_id: Mapped[str | None] = mapped_column(String(64))
    # The node whose transaction wrote it delivers it; others adopt it when it is old.
    node_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]


class OutboxDelivery(Base):
    __tablename__ = "outbox_deliveries"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handler: Mapped[str] = mapped_column(String(64), primary_key=True)
    delivered_at: Mapped[datetime]
    # Failed tries before the one that succeeded (on the node that delivered it).
    failures: Mapped[int] = mapped_column(Integer, default=0)
